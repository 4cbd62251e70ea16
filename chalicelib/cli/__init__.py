"""The ``tglake`` command line; each module adds its commands to ``main``."""

from chalicelib.cli import lake  # noqa: F401  (registers commands)
from chalicelib.cli.base import main

__all__ = ["main"]
