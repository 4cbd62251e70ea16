"""The ``tglake`` command line; each module adds its commands to ``main``."""

from chalicelib.cli import lake, ops, privacy  # noqa: F401  (registers commands)
from chalicelib.cli import query  # noqa: F401  (registers tglake query)
from chalicelib.cli import report  # noqa: F401  (registers tglake report)
from chalicelib.cli.base import main

__all__ = ["main"]
