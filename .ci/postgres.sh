#!/usr/bin/env bash
# CI: the PostgreSQL server binaries (initdb, pg_ctl) that tests/pgserver.py runs for the
# shared-journal tests. Installs Debian's postgresql only when they are missing; exits 0 when
# present. The tests start their own server: the package's cluster is not used (nor started).
set -euo pipefail

have_binaries() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        [[ -x $dir/initdb && -x $dir/pg_ctl ]] && return 0
    done
    command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1
}
have_binaries && exit 0

sudo=()
if [[ $(id -u) != 0 ]]; then
    command -v sudo >/dev/null 2>&1 || { echo "postgres.sh: need root or sudo to install postgresql" >&2; exit 1; }
    sudo=(sudo)
fi
echo "postgres.sh: installing postgresql" >&2
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends postgresql >/dev/null

have_binaries || { echo "postgres.sh: initdb/pg_ctl still missing" >&2; exit 1; }
