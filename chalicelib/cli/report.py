"""``tglake report``: an HTML page of charts over the local lake."""

from __future__ import annotations

from datetime import datetime
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
    "--from", "first", type=click.DateTime(["%Y-%m-%d"]), help="First local day."
)
@click.option("--to", "last", type=click.DateTime(["%Y-%m-%d"]), help="Last local day.")
@click.option(
    "--with-raw",
    is_flag=True,
    help="Also count days not yet compacted (the all_messages view).",
)
@click.option(
    "--dpi",
    type=click.IntRange(30, 300),
    default=110,
    show_default=True,
    help="Resolution of the charts.",
)
def report(
    out: Path,
    first: datetime | None,
    last: datetime | None,
    with_raw: bool,
    dpi: int,
) -> None:
    """Write a self-contained HTML page of charts over the local lake.

    Runs the analyses of athena_sql/ on DuckDB over TGLAKE_ENRICHED (and
    TGLAKE_RAW with --with-raw) and draws messages per day, activity by hour and
    weekday, top users, content mix and time to first reply. Images are embedded,
    so the page opens offline. Prints the page's path (OUT/tglake-report.html);
    fails with one line when the period holds no message.
    """
    from tqdm import tqdm

    from chalicelib import report as pages

    if first and last and last < first:
        raise click.UsageError("--to is before --from")
    params = {"table": "all_messages" if with_raw else "messages"}
    if first:
        params["start"] = first.date().isoformat()
    if last:
        params["end"] = last.date().isoformat()
    settings = load_settings()
    with tqdm(total=pages.steps(), desc="report", unit="chart", leave=False) as bar:
        path = pages.write_report(
            settings, out, params=params, dpi=dpi, progress=bar.update
        )
    click.echo(str(path))
