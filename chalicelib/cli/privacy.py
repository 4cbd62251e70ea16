"""Commands that remove data for good: ``forget`` and ``purge``."""

from __future__ import annotations

import click

from chalicelib.cli.base import load_settings, main


@main.command()
@click.option(
    "--user", "users", type=int, multiple=True, help="A user id (repeatable)."
)
@click.option(
    "--chat", "chats", type=int, multiple=True, help="A chat id (repeatable)."
)
@click.option("--dry-run", is_flag=True, help="Only report what would change.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def forget(
    users: tuple[int, ...], chats: tuple[int, ...], dry_run: bool, yes: bool
) -> None:
    """Erase a person's or a chat's messages from both layers.

    Deletes the raw updates they sent, are the subject of, or that belong to the
    chat (on S3: every version), removes their traces from other updates, and
    rewrites every enriched day without them. A positive chat id is a private chat,
    which is its person too. Prints one line per day it touches, then asks.
    """
    from tqdm import tqdm

    from chalicelib import privacy

    if not users and not chats:
        raise click.UsageError("give at least one --user or --chat")
    settings = load_settings()
    subjects = privacy.Subjects.of(users, chats)
    with tqdm(desc="scanning raw", unit="obj", leave=False) as bar:
        plan = privacy.plan_erasure(settings, subjects, progress=bar.update)
    for day, counts in plan.by_day().items():
        click.echo(f"{day or 'no-day'} {counts.summary()}")
    click.echo(
        f"scanned {plan.scanned} raw objects ({plan.unreadable} unreadable); "
        f"{len(plan.raw)} raw objects and {len(plan.enriched)} enriched files "
        "to change",
        err=True,
    )
    if dry_run or plan.is_empty:
        return
    if not yes:
        click.confirm("Erase them for good?", abort=True, err=True)
    total = len(plan.raw) + len(plan.enriched)
    with tqdm(total=total, desc="erasing", unit="obj", leave=False) as bar:
        privacy.apply_erasure(settings, plan, progress=bar.update)
    click.echo("erased", err=True)


@main.command()
@click.option(
    "--older-than",
    type=click.IntRange(min=1),
    help="Days to keep before today in the lake's time zone "
    "[default: TGLAKE_RAW_RETENTION_DAYS or TGLAKE_ENRICHED_RETENTION_DAYS].",
)
@click.option(
    "--layer",
    type=click.Choice(["raw", "enriched"]),
    default="raw",
    show_default=True,
    help="Which layer to purge.",
)
@click.option("--bot", "bot_id", help="Only this bot's raw objects.")
@click.option("--dry-run", is_flag=True, help="Only report what would be removed.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def purge(
    older_than: int | None, layer: str, bot_id: str | None, dry_run: bool, yes: bool
) -> None:
    """Remove partitions older than the retention, every S3 version included.

    On S3 a lifecycle rule does this for the raw layer without a command (see the
    README). Prints one line per day it removes, then asks.
    """
    from tqdm import tqdm

    from chalicelib import privacy

    settings = load_settings()
    days = older_than or privacy.retention_days(settings, layer)
    if not days:
        variable = f"TGLAKE_{layer.upper()}_RETENTION_DAYS"
        raise click.UsageError(
            f"the {layer} layer is kept forever ({variable} is 0); give --older-than"
        )
    if bot_id is not None and layer != "raw":
        raise click.UsageError("--bot applies to the raw layer only")
    plan = privacy.plan_purge(settings, layer=layer, older_than=days, bot_id=bot_id)
    for day, entries in plan.days.items():
        click.echo(f"{day} objects={len(entries)}")
    click.echo(
        f"{plan.objects} {layer} objects in {len(plan.days)} days before "
        f"{plan.before} to remove",
        err=True,
    )
    if dry_run or not plan.objects:
        return
    if not yes:
        click.confirm("Remove them for good?", abort=True, err=True)
    with tqdm(total=plan.objects, desc="purging", unit="obj", leave=False) as bar:
        removed = privacy.apply_purge(settings, plan, progress=bar.update)
    click.echo(f"removed {removed} objects", err=True)
