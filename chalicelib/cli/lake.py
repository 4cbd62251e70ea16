"""Commands over the lake itself: ``demo`` and ``compact``."""

from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path

import click

from chalicelib.cli.base import load_settings, main
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

    import app
    from chalicelib import demo as conversation
    from chalicelib import queries
    from chalicelib.config import Settings

    folder = folder.resolve()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise click.ClickException(
            f"cannot create {folder}: {error.strerror}"
        ) from None
    environment = conversation.demo_environment(folder)
    os.environ.update(environment)
    settings = Settings.from_env(environment)
    bodies = conversation.generate(seed)
    with tqdm(total=len(bodies), desc="webhook", unit="update", leave=False) as bar:
        statuses = conversation.post_all(
            bodies, Path(app.__file__).resolve().parent, lambda: bar.update()
        )
    answers = ", ".join(
        f"{count}x {status}" for status, count in sorted(statuses.items())
    )
    if any(status >= 300 for status in statuses):
        raise click.ClickException(
            f"the webhook did not store every update ({answers}); "
            f"can {folder} be written to?"
        )
    from chalicelib import jobs

    worker = jobs.compactor(settings)
    raw_keys = [item.key for item in worker.raw.list("telegram/")]
    results = [worker.compact_day(day) for day in conversation.raw_days(raw_keys)]
    for query in queries.available():
        if query.is_ddl:
            continue
        result = queries.run_local(query.name, settings)
        click.echo(f"\n== {query.name}: {query.title}")
        shown = queries.QueryResult(result.columns, result.rows[:DEMO_ROWS])
        click.echo(queries.format_result(shown, "table"))
        if len(result.rows) > DEMO_ROWS:
            click.echo(
                f"(the first {DEMO_ROWS} of {len(result.rows)} rows; "
                f"`tglake query {query.name}` shows all)"
            )
    click.echo(
        f"\nposted {len(bodies)} updates ({answers}); stored {len(raw_keys)} raw "
        f"objects; compacted {len(results)} days into "
        f"{sum(result.rows for result in results)} rows",
        err=True,
    )
    click.echo(f"data in {folder}", err=True)


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
    day: object,
    first: object,
    last: object,
    yesterday: bool,
    every: bool,
    restart: bool,
) -> None:
    """Compact raw days into one Parquet file each.

    Prints one line per day: objects, rows, skipped, bytes and seconds.
    """
    from tqdm import tqdm

    from chalicelib import compaction, jobs

    settings = load_settings()
    if every:
        from chalicelib import maintenance

        maintenance.compact_all(settings, progress=_echo_result, resume=not restart)
        return
    if restart:
        raise click.UsageError("--restart goes with --all")
    days = _days(day, first, last, yesterday, compaction.yesterday(settings))
    worker = jobs.compactor(settings)
    for current in days:
        with tqdm(desc=str(current), unit="obj", leave=False) as bar:
            result = worker.compact_day(current, progress=bar.update)
        _echo_result(result)


def _echo_result(result: DayResult) -> None:
    click.echo(result.summary())


def _days(
    day: object, first: object, last: object, yesterday: bool, default: date
) -> list[date]:
    chosen = [day is not None, first is not None or last is not None, yesterday]
    if sum(chosen) != 1:
        raise click.UsageError(
            "give exactly one of --date, --from/--to, --yesterday or --all"
        )
    if yesterday:
        return [default]
    if day is not None:
        return [day.date()]  # type: ignore[attr-defined]
    if first is None or last is None:
        raise click.UsageError("--from and --to go together")
    start, end = first.date(), last.date()  # type: ignore[attr-defined]
    if end < start:
        raise click.UsageError("--to is before --from")
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]
