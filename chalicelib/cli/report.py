"""The ``report`` command: an HTML page of charts over the local lake."""

from __future__ import annotations

from pathlib import Path

import click

from chalicelib.cli.base import load_settings, main


@main.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder the page is written to (created if missing).",
)
@click.option(
    "--dpi",
    type=click.IntRange(30, 300),
    default=110,
    show_default=True,
    help="Resolution of the charts.",
)
def report(out: Path, dpi: int) -> None:
    """Write a self-contained HTML page of charts over the local lake.

    Runs the analyses in athena_sql/ on DuckDB over TGLAKE_ENRICHED and
    TGLAKE_RAW: messages per day, activity by hour and weekday, top users,
    content mix and time to first reply. The page embeds its images, so it
    opens offline. Prints the page's path; fails when the lake has no messages.
    """
    from tqdm import tqdm

    from chalicelib import report as pages

    settings = load_settings()
    with tqdm(total=pages.steps(), desc="report", unit="step", leave=False) as bar:
        path = pages.write_report(settings, out, dpi=dpi, progress=bar.update)
    click.echo(str(path))
