"""Commands known by name and summary, whose module is imported only when they are used.

Start-up is what scripts calling kalixo in a loop pay most: building every command (importing
its module, typer reading every parameter) costs more than the one command that runs. So the
root group holds a `LazyCommands` mapping (click's documented LazyGroup pattern, at the level
of the mapping so that everything typer and click do with `group.commands` keeps working):
`kalixo retrieve-order` imports kalixo_cli.commands.order only, and `kalixo --help` lists
the commands from their summaries without importing any of them.

A summary must be the first paragraph of the command's help (its docstring, or the `help=` of
its Typer app); tests/test_lazy.py checks every one against the loaded command.
"""

import importlib
from collections.abc import Callable, Iterator, MutableMapping

from typer._click import Command
from typer._click.utils import make_default_short_help


class LazyCommand:
    """Where a command lives ("module:attribute": a command function or a Typer app) and the
    first paragraph of its help, which the parent's `--help` shows without importing it.

    (Plain classes here, not dataclasses: creating a dataclass costs about a millisecond of
    every start-up.)"""

    __slots__ = ("summary", "target")

    def __init__(self, target: str, summary: str) -> None:
        self.target = target
        self.summary = summary

    def load_target(self) -> object:
        module_name, _, attribute = self.target.partition(":")
        return getattr(importlib.import_module(module_name), attribute)


class Summary:
    """What a group's `--help` needs of a command it has not loaded: the same short help."""

    __slots__ = ("summary",)
    hidden = False

    def __init__(self, summary: str) -> None:
        self.summary = summary

    def get_short_help_str(self, limit: int = 45) -> str:
        return make_default_short_help(self.summary, limit).strip()


Loader = Callable[[str, LazyCommand], Command]


class LazyCommands(MutableMapping[str, Command]):
    """A group's commands in registration order, each built on first access."""

    def __init__(self, entries: dict[str, LazyCommand], load: Loader) -> None:
        self._entries = dict(entries)
        self._load = load
        self._loaded: dict[str, Command] = {}
        self._order = list(entries)

    def __getitem__(self, name: str) -> Command:
        if name not in self._loaded:
            entry = self._entries[name]  # KeyError for an unknown name, as a dict
            self._loaded[name] = self._load(name, entry)
        return self._loaded[name]

    def __setitem__(self, name: str, command: Command) -> None:
        if name not in self._order:
            self._order.append(name)
        self._entries.pop(name, None)
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        if name not in self._order:
            raise KeyError(name)
        self._order.remove(name)
        self._entries.pop(name, None)
        self._loaded.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._order))

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, name: object) -> bool:
        return name in self._order

    def peek(self, name: str) -> Command | Summary:
        """The command if it is loaded, else its summary: enough for a list of commands."""
        if name in self._loaded:
            return self._loaded[name]
        return Summary(self._entries[name].summary)

    def loaded(self) -> list[str]:
        """Names of the commands built so far (the import-list tests read it)."""
        return [name for name in self._order if name in self._loaded]
