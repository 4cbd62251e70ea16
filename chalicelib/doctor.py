"""Health checks of a deployment: storage, secret, chats, the bot, the webhook.

Each check gives one ``Check``; ``tglake doctor`` prints one line per check and
fails when any check failed. Checks that need the bot token are skipped (not failed)
when ``TELEGRAM_BOT_TOKEN`` is not set. Nothing here prints chat titles, names or
the token.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from chalicelib.config import Settings
from chalicelib.errors import TelegramError, TglakeError
from chalicelib.secrets import SecretSource
from chalicelib.storage import Store
from chalicelib.telegram import ALLOWED_UPDATES, ApiError, BotApi, redact

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"
PROBE_PREFIX = "state/doctor/"
ADMIN_STATUSES = ("administrator", "creator")
GROUP_TYPES = ("group", "supergroup")
DEFAULT_MAX_PENDING = 100
DEFAULT_ERROR_WINDOW = 3600
PRIVACY_ADVICE = (
    "privacy mode is on, so in groups the bot sees only commands, replies to it and "
    "mentions. Turn it off: in @BotFather send /mybots, choose the bot, Bot Settings "
    "> Group Privacy > Turn off; then remove the bot from each group and add it "
    "again (or make it an admin there)"
)


@dataclass(frozen=True)
class Check:
    """The result of one check."""

    name: str
    status: str
    detail: str

    def line(self) -> str:
        return f"{self.status:<4}  {self.name}: {self.detail}"


def verdict(checks: Iterable[Check]) -> tuple[bool, str]:
    """Whether every check passed, and a one-line summary."""
    counts = {OK: 0, WARN: 0, FAIL: 0, SKIP: 0}
    for check in checks:
        counts[check.status] += 1
    healthy = counts[FAIL] == 0
    summary = (
        f"{'healthy' if healthy else 'UNHEALTHY'}: {counts[OK]} ok, "
        f"{counts[WARN]} warnings, {counts[FAIL]} failed, {counts[SKIP]} skipped"
    )
    return healthy, summary


def check_store(name: str, store: Store) -> Check:
    """Write, read back and delete a probe object under ``state/``."""
    key = f"{PROBE_PREFIX}probe-{uuid.uuid4().hex}"
    body = f"tglake doctor {time.time()}".encode()
    try:
        store.put(key, body)
        read = store.get(key)
        store.delete([key])
        left = store.exists(key)
    except TglakeError as error:
        return Check(name, FAIL, str(error))
    if read != body:
        return Check(
            name, FAIL, f"read back other bytes than written ({store.location})"
        )
    if left:
        return Check(name, FAIL, f"probe not deleted ({store.location}/{key})")
    return Check(name, OK, f"{store.location} is writable")


def check_secret(settings: Settings, source: SecretSource) -> Check:
    """The webhook secret: required on a deployed stage, readable from SSM if named."""
    name = "webhook secret"
    if settings.secret_parameter:
        try:
            count = len(source.secrets())
        except TglakeError as error:
            return Check(name, FAIL, str(error))
        where = f"SSM parameter {settings.secret_parameter}"
        return Check(name, OK, f"{count} secret(s) readable from {where}")
    if settings.secret_tokens:
        return Check(name, OK, f"{len(settings.secret_tokens)} secret(s) configured")
    if settings.is_deployed:
        return Check(name, FAIL, "a deployed stage needs TGLAKE_SECRET_PARAMETER")
    return Check(
        name, WARN, "none set: the webhook accepts any sender (fine for `tglake poll`)"
    )


def chat_kind(chat_id: int) -> str | None:
    """What an id's shape says about a chat, or None when no chat has that id."""
    if chat_id > 0:
        return "private chat"
    if chat_id <= -1_000_000_000_000:
        return "supergroup or channel"
    if chat_id < 0:
        return "basic group"
    return None


def check_chats(
    settings: Settings, api: BotApi | None
) -> tuple[list[Check], dict[int, Any]]:
    """Each allowlisted chat id: its shape, and (with a token) that the bot sees it."""
    if not settings.chat_ids:
        detail = (
            "TGLAKE_ALLOW_ALL_CHATS: every chat is accepted"
            if settings.allow_all_chats
            else "TGLAKE_CHAT_IDS is empty: every chat is accepted"
        )
        return [Check("chat ids", WARN, detail)], {}
    checks: list[Check] = []
    types: dict[int, Any] = {}
    for chat_id in sorted(settings.chat_ids):
        name = f"chat {chat_id}"
        kind = chat_kind(chat_id)
        if kind is None:
            checks.append(Check(name, FAIL, "0 is not a chat id"))
            continue
        if api is None:
            checks.append(Check(name, OK, f"looks like a {kind} (not checked online)"))
            continue
        try:
            chat = api.get_chat(chat_id)
        except ApiError as error:
            checks.append(_chat_error(name, error))
            continue
        except TelegramError as error:
            checks.append(Check(name, FAIL, str(error)))
            continue
        types[chat_id] = chat.get("type")
        checks.append(Check(name, OK, f"the bot sees this {chat.get('type')}"))
    return checks, types


def _chat_error(name: str, error: ApiError) -> Check:
    if error.migrate_to_chat_id is not None:
        return Check(
            name,
            WARN,
            f"upgraded to supergroup {error.migrate_to_chat_id}; add that id to "
            "TGLAKE_CHAT_IDS",
        )
    return Check(
        name,
        FAIL,
        f"{error.description}: wrong id, or the bot is not a member",
    )


def check_token(api: BotApi) -> tuple[Check, dict[str, Any] | None]:
    """getMe: the token works, and who the bot is."""
    try:
        me = api.get_me()
    except TelegramError as error:
        return Check("bot token", FAIL, str(error)), None
    return Check("bot token", OK, f"bot @{me.get('username')} (id {me.get('id')})"), me


def check_privacy(api: BotApi, me: dict[str, Any], chat_types: dict[int, Any]) -> Check:
    """Whether the bot reads every message of the allowlisted groups."""
    name = "privacy mode"
    if me.get("can_read_all_group_messages") is True:
        return Check(name, OK, "off: the bot reads every message")
    groups = [chat for chat, kind in chat_types.items() if kind in GROUP_TYPES]
    if chat_types and not groups:
        return Check(name, OK, "on, but no allowlisted chat is a group")
    blind = []
    for chat_id in groups:
        try:
            member = api.get_chat_member(chat_id, int(me.get("id", 0)))
        except TelegramError:
            blind.append(chat_id)
            continue
        if member.get("status") not in ADMIN_STATUSES:
            blind.append(chat_id)
    if groups and not blind:
        return Check(name, OK, "on, but the bot is an admin in every allowlisted group")
    where = f" (groups {', '.join(map(str, blind))})" if blind else ""
    return Check(name, FAIL, PRIVACY_ADVICE + where)


def webhook_problems(
    info: dict[str, Any],
    *,
    now: float,
    error_window: int = DEFAULT_ERROR_WINDOW,
    max_pending: int = DEFAULT_MAX_PENDING,
) -> list[str]:
    """What is wrong with a ``getWebhookInfo`` answer (empty when healthy)."""
    problems = []
    pending = int(info.get("pending_update_count") or 0)
    if pending > max_pending:
        problems.append(f"{pending} updates pending (over {max_pending})")
    last_error = info.get("last_error_date")
    if isinstance(last_error, int) and last_error and now - last_error < error_window:
        message = redact(str(info.get("last_error_message") or "no message"))
        age = format_age(now - last_error)
        problems.append(f"last error {age} ago: {message}")
    if info.get("url"):
        missing = missing_kinds(info)
        if missing:
            problems.append(f"allowed_updates lacks {', '.join(missing)}")
    return problems


def missing_kinds(info: dict[str, Any]) -> list[str]:
    """The update kinds tglake wants that the webhook will not deliver."""
    allowed = info.get("allowed_updates")
    if not isinstance(allowed, list) or not allowed:
        # Telegram's default: everything except these three.
        excluded = ("chat_member", "message_reaction", "message_reaction_count")
        return [kind for kind in ALLOWED_UPDATES if kind in excluded]
    return [kind for kind in ALLOWED_UPDATES if kind not in allowed]


def check_webhook(
    api: BotApi, *, now: float, error_window: int, max_pending: int
) -> Check:
    """The webhook's health: set, recent errors, backlog, allowed kinds."""
    name = "webhook"
    try:
        info = api.get_webhook_info()
    except TelegramError as error:
        return Check(name, FAIL, str(error))
    problems = webhook_problems(
        info, now=now, error_window=error_window, max_pending=max_pending
    )
    pending = int(info.get("pending_update_count") or 0)
    if not info.get("url"):
        status = FAIL if problems else WARN
        detail = "; ".join(problems) if problems else f"{pending} pending"
        return Check(
            name,
            status,
            f"not set, updates wait for `tglake poll` or `tglake webhook set` "
            f"({detail})",
        )
    if problems:
        return Check(name, FAIL, "; ".join(problems))
    return Check(name, OK, f"{redact(info['url'])}, {pending} pending")


def run_checks(
    settings: Settings,
    *,
    raw: Store,
    enriched: Store,
    api: BotApi | None,
    secrets: SecretSource,
    error_window: int = DEFAULT_ERROR_WINDOW,
    max_pending: int = DEFAULT_MAX_PENDING,
    now: float | None = None,
) -> list[Check]:
    """Every check, in the order an operator fixes things."""
    now = time.time() if now is None else now
    checks = [
        check_store("raw store", raw),
        check_store("enriched store", enriched),
        check_secret(settings, secrets),
    ]
    if api is None:
        checks.extend(check_chats(settings, None)[0])
        checks.append(Check("bot", SKIP, "TELEGRAM_BOT_TOKEN is not set"))
        return checks
    token, me = check_token(api)
    checks.append(token)
    chat_checks, chat_types = check_chats(settings, api if me else None)
    checks.extend(chat_checks)
    if me is None:
        return checks
    checks.append(check_privacy(api, me, chat_types))
    checks.append(
        check_webhook(api, now=now, error_window=error_window, max_pending=max_pending)
    )
    return checks


def format_age(seconds: float) -> str:
    """A short human age: 42 s, 5 min, 3 h, 2 d."""
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"
