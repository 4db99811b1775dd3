"""kalixo: place and inspect Kalixo orders from the terminal and from scripts."""

# The one place the version is written: the build reads it into the package metadata
# (pyproject [tool.hatch.version]), so importing importlib.metadata at start-up is not needed.
__version__ = "0.1.0"
