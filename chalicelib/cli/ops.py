"""Operator commands: ``webhook set|info|delete``, ``doctor``, ``poll``,
``import-export``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from chalicelib.cli.base import load_settings, main
from chalicelib.config import Settings
from chalicelib.errors import ConfigError, TelegramError

if TYPE_CHECKING:
    from chalicelib.telegram import BotApi

MAX_PENDING_HELP = "Fail when more updates than this are waiting."
ERROR_WINDOW_HELP = "Fail when Telegram's last delivery error is younger (seconds)."


def _api(settings: Settings) -> BotApi:
    from chalicelib.telegram import BotApi

    return BotApi.from_settings(settings)


def _webhook_secret(settings: Settings) -> str | None:
    from chalicelib.secrets import SecretSource

    source = SecretSource(settings)
    secrets = source.secrets() if source.enabled else ()
    return secrets[0] if secrets else None


@main.group()
def webhook() -> None:
    """Point Telegram at the deployed webhook, inspect it, or remove it."""


@webhook.command("set")
@click.option("--url", required=True, help="The public HTTPS URL of POST /webhook.")
@click.option(
    "--max-connections",
    type=click.IntRange(1, 100),
    help="Parallel deliveries Telegram may open (its default is 40).",
)
@click.option(
    "--allow-no-secret",
    is_flag=True,
    help="Set the webhook even though no secret is configured (anyone could post).",
)
def webhook_set(url: str, max_connections: int | None, allow_no_secret: bool) -> None:
    """Set the webhook with the configured secret and every update kind tglake keeps.

    Pending updates are never dropped. The result is read back with getWebhookInfo;
    the command fails when the URL or the list of update kinds did not take.
    """
    from chalicelib.doctor import missing_kinds
    from chalicelib.telegram import ALLOWED_UPDATES, redact

    settings = load_settings()
    secret = _webhook_secret(settings)
    if not secret and not allow_no_secret:
        raise ConfigError(
            "no webhook secret configured (TGLAKE_SECRET_TOKEN or "
            "TGLAKE_SECRET_PARAMETER); pass --allow-no-secret to set it anyway"
        )
    if not url.rstrip("/").endswith("/webhook"):
        click.echo(f"warning: tglake serves POST /webhook, not {redact(url)}", err=True)
    api = _api(settings)
    api.set_webhook(
        url,
        secret_token=secret,
        allowed_updates=ALLOWED_UPDATES,
        max_connections=max_connections,
    )
    info = api.get_webhook_info()
    if info.get("url") != url:
        reported = redact(str(info.get("url") or "(none)"))
        raise TelegramError(f"setWebhook did not take: Telegram reports url {reported}")
    missing = missing_kinds(info)
    if missing:
        raise TelegramError(
            f"setWebhook did not take every kind: {', '.join(missing)} missing"
        )
    click.echo(
        f"webhook set to {redact(url)} with {'a' if secret else 'NO'} secret; "
        f"{len(ALLOWED_UPDATES)} update kinds; "
        f"{info.get('pending_update_count', 0)} pending updates kept",
        err=True,
    )


@webhook.command("info")
@click.option("--max-pending", default=100, show_default=True, help=MAX_PENDING_HELP)
@click.option("--error-window", default=3600, show_default=True, help=ERROR_WINDOW_HELP)
def webhook_info(max_pending: int, error_window: int) -> None:
    """Show the webhook's URL, backlog, last error and update kinds.

    Exits non-zero when the last delivery error is recent, updates pile up, or a
    kind tglake keeps is not delivered, so it can run from cron or CI.
    """
    from chalicelib.doctor import format_age, webhook_problems
    from chalicelib.telegram import redact

    info = _api(load_settings()).get_webhook_info()
    now = time.time()
    last = info.get("last_error_date")
    last_error = "none"
    if isinstance(last, int) and last:
        message = redact(str(info.get("last_error_message") or ""))
        last_error = f"{message} ({format_age(now - last)} ago)"
    allowed = info.get("allowed_updates")
    lines = {
        "url": redact(info.get("url") or "") or "(none)",
        "pending_update_count": info.get("pending_update_count", 0),
        "last_error": last_error,
        "allowed_updates": ",".join(allowed) if allowed else "(Telegram's default)",
        "max_connections": info.get("max_connections", "-"),
        "ip_address": info.get("ip_address", "-"),
    }
    for name, value in lines.items():
        click.echo(f"{name}: {value}")
    problems = webhook_problems(
        info, now=now, error_window=error_window, max_pending=max_pending
    )
    if problems:
        click.echo(f"unhealthy: {'; '.join(problems)}", err=True)
        click.get_current_context().exit(1)


@webhook.command("delete")
@click.option(
    "--drop-pending-updates",
    is_flag=True,
    help="Also throw away every update Telegram is holding (they are lost).",
)
def webhook_delete(drop_pending_updates: bool) -> None:
    """Remove the webhook (to use `tglake poll`); pending updates are kept."""
    api = _api(load_settings())
    pending = api.get_webhook_info().get("pending_update_count", 0)
    api.delete_webhook(drop_pending_updates=drop_pending_updates)
    fate = "DROPPED" if drop_pending_updates else "kept (fetch them with `tglake poll`)"
    click.echo(f"webhook deleted; {pending} pending updates {fate}", err=True)


@main.command()
@click.option("--max-pending", default=100, show_default=True, help=MAX_PENDING_HELP)
@click.option("--error-window", default=3600, show_default=True, help=ERROR_WINDOW_HELP)
def doctor(max_pending: int, error_window: int) -> None:
    """Check storage, secret, chat ids, privacy mode and the webhook in one go.

    Prints one line per check and a verdict; exits non-zero when a check failed.
    Checks that need TELEGRAM_BOT_TOKEN are skipped without it.
    """
    from chalicelib import doctor as checks
    from chalicelib.secrets import SecretSource
    from chalicelib.storage import open_store

    try:
        settings = Settings.from_env()
    except ConfigError as error:
        click.echo(checks.Check("configuration", checks.FAIL, str(error)).line())
        click.echo("UNHEALTHY: fix the configuration first", err=True)
        click.get_current_context().exit(1)
    results = checks.run_checks(
        settings,
        raw=open_store(settings.raw),
        enriched=open_store(settings.enriched),
        api=_api(settings) if settings.bot_token else None,
        secrets=SecretSource(settings),
        error_window=error_window,
        max_pending=max_pending,
    )
    for result in results:
        click.echo(result.line())
    healthy, summary = checks.verdict(results)
    click.echo(summary, err=True)
    if not healthy:
        click.get_current_context().exit(1)


@main.command()
@click.option(
    "--timeout",
    type=click.IntRange(0, 50),
    default=30,
    show_default=True,
    help="Seconds each getUpdates call waits for news.",
)
@click.option(
    "--limit",
    type=click.IntRange(1, 100),
    default=100,
    show_default=True,
    help="Updates per batch.",
)
@click.option("--once", is_flag=True, help="Fetch and store one batch, then stop.")
def poll(timeout: int, limit: int, once: bool) -> None:
    """Long-poll Telegram instead of a webhook, storing every update like it.

    For a machine without a public HTTPS URL. The offset is kept in the raw
    store, so a restart loses nothing and stores nothing twice; Ctrl-C stops
    cleanly. Telegram refuses this while a webhook is set: run `tglake webhook
    delete` first.
    """
    from tqdm import tqdm

    from chalicelib import runtime
    from chalicelib.poll import Poller, PollStats

    settings = load_settings()
    poller = Poller(settings, _api(settings), runtime.store(settings.raw))
    stats = PollStats()
    with tqdm(desc="updates", unit="update", disable=None) as bar:
        seen = 0

        def advance(current: PollStats) -> None:
            nonlocal seen
            bar.update(current.updates - seen)
            seen = current.updates

        try:
            poller.run(
                timeout=timeout, limit=limit, once=once, stats=stats, on_batch=advance
            )
        except KeyboardInterrupt:
            bar.close()
            click.echo(f"stopped: {stats.summary()}", err=True)
            return
    click.echo(f"polled: {stats.summary()}", err=True)


@main.command("import-export")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--no-compact", is_flag=True, help="Leave the touched days uncompacted.")
@click.option("--dry-run", is_flag=True, help="Convert and count, write nothing.")
def import_export(path: Path, no_compact: bool, dry_run: bool) -> None:
    """Load a Telegram Desktop chat export (result.json) into the raw layer.

    History from before the bot joined becomes queryable. Messages the webhook
    already stored are not duplicated; re-importing writes the same keys. The
    touched days are compacted once at the end.
    """
    from tqdm import tqdm

    from chalicelib import jobs, runtime
    from chalicelib.export import Importer, ImportSummary, read_export

    settings = load_settings()
    chats, unusable = read_export(path)
    summary = ImportSummary()
    if unusable:
        summary.skipped["chat a bot cannot join"] += unusable
    importer = Importer(settings, runtime.store(settings.raw))
    bodies = importer.plan(chats, summary)
    if dry_run:
        days = len({importer.day_of(json.loads(body)) for body in bodies})
        click.echo(
            f"dry run, would write {len(bodies)} over {days} days: {summary.summary()}"
        )
        return
    with tqdm(total=len(bodies), desc="import", unit="msg", disable=None) as bar:
        importer.write(bodies, summary, progress=bar.update)
    click.echo(summary.summary())
    if no_compact or not summary.days:
        return
    worker = jobs.compactor(settings)
    rows = 0
    for day in tqdm(sorted(summary.days), desc="compact", unit="day", disable=None):
        rows += jobs.compact_or_defer(worker, day).rows
    click.echo(f"compacted {len(summary.days)} days, {rows} rows", err=True)
