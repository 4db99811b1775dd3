"""kalixo: place and inspect Kalixo orders from the terminal, from scripts and from Python.

`from kalixo_cli import Kalixo` is the Python API (kalixo_cli.workflows.kalixo); the
errors it raises are those of kalixo_cli.domain.errors. Both are loaded on first use, so
that `kalixo --help` pays for neither.
"""

from typing import TYPE_CHECKING, Any

# The one place the version is written: the build reads it into the package metadata
# (pyproject [tool.hatch.version]), so importing importlib.metadata at start-up is not needed.
__version__ = "0.1.0"

__all__ = ["Kalixo", "KalixoError", "__version__"]

if TYPE_CHECKING:
    from kalixo_cli.domain.errors import KalixoError
    from kalixo_cli.workflows.kalixo import Kalixo


def __getattr__(name: str) -> Any:
    if name == "Kalixo":
        from kalixo_cli.workflows.kalixo import Kalixo

        return Kalixo
    if name == "KalixoError":
        from kalixo_cli.domain.errors import KalixoError

        return KalixoError
    raise AttributeError(f"module 'kalixo_cli' has no attribute {name!r}")
