"""Commands over the lake itself: ``demo`` and ``compact``."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import click

from chalicelib.cli.base import load_settings, main, one_line, warn_if_missing
from chalicelib.compaction import DayResult

DEMO_ROWS = 24


@main.command()
@click.option(
    "--folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("tglake-demo"),
    show_default=True,
    help="Where the demo keeps its raw and enriched layers.",
)
@click.option("--seed", default=7, show_default=True, help="Seed of the conversation.")
def demo(folder: Path, seed: int) -> None:
    """Run the whole pipeline on a generated group conversation.

    Posts every update through the real webhook handler, compacts each day to
    Parquet, runs every query in athena_sql/ on DuckDB and prints the answers.
    Running it again changes no counts.
    """
    from tqdm import tqdm

    from chalicelib import demo as conversation
    from chalicelib import queries

    folder = folder.resolve()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise click.ClickException(
            f"cannot create {folder}: {error.strerror}"
        ) from None
    bodies = conversation.generate(seed)
    with tqdm(total=len(bodies), desc="webhook", unit="update", leave=False) as bar:
        done = conversation.run(folder, bodies, lambda: bar.update())
    if not done.is_stored:
        raise click.ClickException(
            f"the webhook did not store every update ({done.answers}); "
            f"can {folder} be written to?"
        )
    for query in queries.available():
        if query.is_ddl:
            continue
        result = queries.run_local(query.name, done.settings)
        click.echo(f"\n== {query.name}: {query.title}")
        click.echo(queries.format_result(result, "table", max_rows=DEMO_ROWS))
    rows = sum(result.rows for result in done.results)
    click.echo(
        f"\nposted {sum(done.statuses.values())} updates ({done.answers}); stored "
        f"{done.raw_objects} raw objects; compacted {len(done.results)} days into "
        f"{rows} rows; data in {folder}",
        err=True,
    )
    click.echo(
        "to explore it with the other commands (`tglake query NAME` shows a whole "
        f"answer):\n  {conversation.shell_settings(done.settings)}",
        err=True,
    )


@main.command()
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]), help="One day.")
@click.option("--from", "first", type=click.DateTime(["%Y-%m-%d"]), help="First day.")
@click.option("--to", "last", type=click.DateTime(["%Y-%m-%d"]), help="Last day.")
@click.option("--yesterday", is_flag=True, help="Yesterday in the lake's time zone.")
@click.option(
    "--all", "every", is_flag=True, help="Every day (after a schema change; resumes)."
)
@click.option(
    "--restart", is_flag=True, help="With --all: start over instead of resuming."
)
def compact(
    day: datetime | None,
    first: datetime | None,
    last: datetime | None,
    yesterday: bool,
    every: bool,
    restart: bool,
) -> None:
    """Compact raw days into one Parquet file each.

    Prints one line per day: objects, rows, skipped, other, duplicates, bytes and
    seconds. A day another run is compacting is named and the range goes on.
    """
    from tqdm import tqdm

    from chalicelib import compaction, jobs

    chosen = [day is not None, first is not None or last is not None, yesterday, every]
    if sum(chosen) != 1:
        raise click.UsageError(
            "give exactly one of --date, --from/--to, --yesterday or --all"
        )
    settings = load_settings()
    if every:
        from chalicelib import maintenance

        warn_if_missing(settings, "raw", "enriched")
        done = maintenance.compact_all(
            settings, progress=_echo_result, resume=not restart
        )
        if not done:
            click.echo(f"no days to rewrite in {settings.raw} or {settings.enriched}")
        return
    if restart:
        raise click.UsageError("--restart goes with --all")
    days = _days(day, first, last, yesterday, compaction.yesterday(settings))
    warn_if_missing(settings, "raw")
    worker = jobs.compactor(settings)
    failed = []
    for current in days:
        with tqdm(desc=str(current), unit="obj", leave=False, disable=None) as bar:
            try:
                result = worker.compact_day(current, progress=bar.update)
            except compaction.DayNotCompacted as error:
                # A problem of this day only: the range goes on.
                failed.append(current)
                click.echo(f"{current} not compacted: {one_line(str(error))}", err=True)
                continue
        _echo_result(result)
    if failed:
        raise click.ClickException(f"{len(failed)} of {len(days)} days not compacted")


def _echo_result(result: DayResult) -> None:
    click.echo(result.summary())


def _days(
    day: datetime | None,
    first: datetime | None,
    last: datetime | None,
    yesterday: bool,
    default: date,
) -> list[date]:
    if yesterday:
        return [default]
    if day is not None:
        return [day.date()]
    if first is None or last is None:
        raise click.UsageError("--from and --to go together")
    start, end = first.date(), last.date()
    if end < start:
        raise click.UsageError("--to is before --from")
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]
