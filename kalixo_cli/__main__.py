"""`python -m kalixo_cli`, the same as the `kalixo` command."""

from kalixo_cli.cli import main

main()
