"""Regenerate the README's usage blocks from the CLI's own --help, so they never go stale.

A block is written as

    <!-- usage: place-order -->
    ```text
    ...output of `kalixo place-order --help`...
    ```
    <!-- /usage -->

Run `.venv/bin/python scripts/gen_readme.py` after changing commands or help;
`--check` exits 1 when README.md is out of date; tests/test_cli.py's
`test_readme_usage_blocks_are_fresh` fails the suite until it is regenerated.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
WIDTH = "100"
BLOCK = re.compile(
    r"(<!-- usage:(?P<args>[^>]*?)-->\n```text\n)(?P<body>.*?)(```\n<!-- /usage -->)",
    re.DOTALL,
)


def help_text(args: str) -> str:
    from typer.testing import CliRunner

    from kalixo_cli.cli import app

    result = CliRunner().invoke(
        app, [*args.split(), "--help"], env={"COLUMNS": WIDTH, "TERM": "dumb"}
    )
    if result.exit_code != 0:
        raise SystemExit(f"kalixo {args} --help failed: {result.output}")
    return "\n".join(line.rstrip() for line in result.stdout.strip("\n").splitlines()) + "\n"


def render(text: str) -> str:
    return BLOCK.sub(lambda m: m.group(1) + help_text(m.group("args")) + m.group(4), text)


def main(argv: list[str]) -> int:
    os.environ["COLUMNS"] = WIDTH
    current = README.read_text()
    fresh = render(current)
    if "--check" in argv:
        if fresh != current:
            print("stale: README.md usage blocks; run scripts/gen_readme.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(fresh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
