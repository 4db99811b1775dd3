#!/usr/bin/env bash
# CI: the real zsh and fish that tests/test_completions.py drives (bash is already here).
# Installs only what is missing, with one quiet `apt-get update` first; exits 0 when present.
set -euo pipefail

missing=()
for shell in zsh fish; do
    command -v "$shell" >/dev/null 2>&1 || missing+=("$shell")
done
((${#missing[@]} == 0)) && exit 0

sudo=()
if [[ $(id -u) != 0 ]]; then
    command -v sudo >/dev/null 2>&1 || { echo "shells.sh: need root or sudo to install ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
echo "shells.sh: installing ${missing[*]}" >&2
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

for shell in "${missing[@]}"; do
    command -v "$shell" >/dev/null 2>&1 || { echo "shells.sh: $shell still missing" >&2; exit 1; }
done
