"""The ``tglake`` command line; each module adds its commands to ``main``."""

from chalicelib.cli import (  # noqa: F401  (registers commands)
    lake,
    ops,
    privacy,
    query,
    report,
)
from chalicelib.cli.base import main

__all__ = ["main"]
