"""The ``tglake`` command group and what every command shares."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Any

import click

from chalicelib.config import Settings
from chalicelib.errors import TglakeError

MAX_ERROR_CHARS = 1000


class Group(click.Group):
    """A group whose project errors end as one line and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TglakeError as error:
            raise click.ClickException(one_line(str(error))) from None
        except RuntimeError as error:
            # DuckDB turns Ctrl-C during a statement into this, not KeyboardInterrupt.
            if str(error) == "Query interrupted":
                raise click.Abort() from None
            raise


def one_line(message: str) -> str:
    """An error message as one line: its first paragraph, cut to a bounded length
    (DuckDB appends the SQL around the error after a blank line)."""
    paragraph = message.strip().split("\n\n", 1)[0]
    line = " ".join(part.strip() for part in paragraph.splitlines() if part.strip())
    return line if len(line) <= MAX_ERROR_CHARS else line[: MAX_ERROR_CHARS - 1] + "…"


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log each unit of work to stderr.")
def main(verbose: bool) -> None:
    """tglake: Telegram group messages in a data lake you can query with SQL."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s %(message)s",
    )
    logging.getLogger("chalicelib").setLevel(
        logging.INFO if verbose else logging.WARNING
    )
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop)


def _stop(signum: int, frame: object) -> None:
    # A `kill` or a timeout unwinds like Ctrl-C: leases are released and
    # temporary files removed on the way out.
    raise SystemExit(128 + signum)


def load_settings() -> Settings:
    """Settings from the environment, as a one-line error when they are wrong."""
    return Settings.from_env()


def warn_if_missing(settings: Settings, *layers: str) -> None:
    """Say on stderr when a layer's folder does not exist: a mistyped ``TGLAKE_RAW``
    would otherwise look exactly like a lake with no messages."""
    for layer in layers:
        location = getattr(settings, layer)
        if not location.startswith("s3://") and not Path(location).is_dir():
            variable = f"TGLAKE_{layer.upper()}"
            click.echo(
                f"warning: {location} ({variable}) does not exist: nothing to read",
                err=True,
            )
