"""Every exit code in the README's table is produced by some test of the suite.

Named to run last: it reads what the other tests saw (`tests.helpers.EXIT_CODES_SEEN`,
filled by `run` and by `record_exit` for subprocesses). It only judges a run of the whole
suite; on a partial run (-k, one file) there is nothing to judge and it says so.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import EXIT_CODES_SEEN

ROOT = Path(__file__).resolve().parent.parent


def readme_exit_codes() -> set[int]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    return {int(code) for code in re.findall(r"^\| (\d+) \| ", table, re.MULTILINE)}


def test_the_readme_table_lists_every_exit_code() -> None:
    from kalixo_cli.domain.errors import ExitCode

    assert readme_exit_codes() == {int(code) for code in ExitCode}


def test_every_exit_code_in_the_readme_is_produced_by_a_test(
    request: pytest.FixtureRequest,
) -> None:
    modules = {Path(str(item.path)).name for item in request.session.items}
    every = {path.name for path in (ROOT / "tests").glob("test_*.py")}
    if modules != every or request.config.getoption("keyword"):
        pytest.skip("judged on a run of the whole suite only")
    missing = readme_exit_codes() - EXIT_CODES_SEEN
    assert not missing, f"no test produces exit code(s) {sorted(missing)}"
