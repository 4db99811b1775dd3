"""The repository stands alone: a fresh clone runs its tests, scripts and build with nothing
beside it (the README's test command once ended in 61 errors on a user's clone because the
contract test read Kalixo's spec from a folder beside the checkout)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "tests" / "data" / "kalixo-openapi-v2.json"

# A path that climbs out of the checkout: "../x", parents[2] of a file in a top-level folder,
# or an absolute path into the machine the tests happened to run on.
OUTSIDE = re.compile(r"""(["'/]\.\./|parents\[[2-9]\]|["'](/work|/home|/tmp/[a-z])/)""")


def _code_files() -> list[Path]:
    files = [ROOT / "pyproject.toml", *(ROOT / ".ci").iterdir()]
    for folder in ("tests", "scripts", "bench"):
        files += [
            path
            for path in (ROOT / folder).rglob("*")
            if path.suffix in {".py", ".sh"} and "__pycache__" not in path.parts
        ]
    return files


def test_no_test_script_or_build_step_reads_outside_the_repository() -> None:
    offenders = []
    for path in _code_files():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if OUTSIDE.search(line) and path != Path(__file__).resolve():
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_the_spec_copy_is_in_the_repository_with_its_provenance() -> None:
    spec = json.loads(SPEC.read_text(encoding="utf-8"))
    assert spec["openapi"].startswith("3.1")
    note = (SPEC.parent / "README.md").read_text(encoding="utf-8")
    assert SPEC.name in note
    assert spec["info"]["version"] in note
    assert hashlib.sha256(SPEC.read_bytes()).hexdigest() in note  # replaced whole, never edited
