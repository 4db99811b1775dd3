"""kalixo: place and inspect Kalixo orders from the terminal and from scripts."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kalixo")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
