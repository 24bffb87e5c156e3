"""pytest-eng5: verification harness for ENG5 NP comparative-judgement runs."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pytest-eng5")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["__version__"]
