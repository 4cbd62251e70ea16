"""Reading Telegram updates: what kind each is, which chat and day it belongs to, and
the enriched row a message becomes.

Everything here takes arbitrary JSON values and never raises on odd input: real
traffic has missing keys, explicit nulls, a chat without ``type``, ids of 0 and dates
of 0. Only the standard library is used, so the webhook can import it cheaply.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

MESSAGE_KINDS = ("message", "edited_message", "channel_post", "edited_channel_post")
EDIT_KINDS = ("edited_message", "edited_channel_post")

# Checked in order: a video note or an animation also carries other media keys.
CONTENT_KEYS = (
    "text",
    "animation",
    "photo",
    "video",
    "video_note",
    "voice",
    "audio",
    "document",
    "sticker",
    "story",
    "dice",
    "poll",
    "venue",
    "location",
    "contact",
    "game",
    "invoice",
    "paid_media",
    "giveaway",
)
SERVICE_KEYS = (
    "new_chat_members",
    "left_chat_member",
    "new_chat_title",
    "new_chat_photo",
    "delete_chat_photo",
    "group_chat_created",
    "supergroup_chat_created",
    "channel_chat_created",
    "migrate_to_chat_id",
    "migrate_from_chat_id",
    "pinned_message",
    "message_auto_delete_timer_changed",
    "forum_topic_created",
    "forum_topic_edited",
    "forum_topic_closed",
    "forum_topic_reopened",
    "general_forum_topic_hidden",
    "general_forum_topic_unhidden",
    "video_chat_scheduled",
    "video_chat_started",
    "video_chat_ended",
    "video_chat_participants_invited",
    "write_access_allowed",
    "users_shared",
    "chat_shared",
    "boost_added",
    "chat_background_set",
    "successful_payment",
    "proximity_alert_triggered",
)
KIND_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,63}")
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
FORWARD_KEYS = ("forward_origin", "forward_date", "forward_from", "forward_from_chat")
FUTURE_SLACK_SECONDS = 24 * 60 * 60
EPOCH_DAY = date(1970, 1, 1)
# The enriched columns, in the order of ``message_values`` and of ``schema.SCHEMA``.
COLUMNS = (
    "message_id",
    "user_id",
    "user_is_bot",
    "user_first_name",
    "chat_id",
    "chat_type",
    "text",
    "date",
    "update_id",
    "update_kind",
    "sent_at",
    "edit_date",
    "content_type",
    "service_type",
    "caption",
    "user_last_name",
    "user_username",
    "chat_title",
    "sender_chat_id",
    "message_thread_id",
    "reply_to_message_id",
    "reply_to_user_id",
    "is_forwarded",
    "new_member_count",
    "left_member_id",
    "migrate_to_chat_id",
    "migrate_from_chat_id",
    "local_date",
    "local_hour",
    "local_weekday",
)
_UPDATE_ID = COLUMNS.index("update_id")
_UPDATE_KIND = COLUMNS.index("update_kind")
_EDIT_DATE = COLUMNS.index("edit_date")
_DECODER = json.JSONDecoder()
_FORWARD_SET = frozenset(FORWARD_KEYS)
# A "\u" escape of a surrogate: only then can the value hold a lone one.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


@dataclass(frozen=True)
class UpdateInfo:
    """The facts about an update that routing and storage need."""

    update_id: int | None
    kind: str
    chat_id: int | None
    timestamp: int | None
    migrate_to_chat_id: int | None = None
    migrate_from_chat_id: int | None = None


def decode(body: bytes) -> Any:
    """The JSON value of a body, or None when it is not JSON.

    UTF-8 is tried first: it is what Telegram sends, and decoding it here is faster
    than letting ``json`` guess the encoding of every raw object.
    """
    try:
        try:
            return _DECODER.decode(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None


def decode_portable(body: bytes) -> Any:
    """The JSON value of a body that every JSON reader of the lake accepts, or None.

    Python's ``json`` also reads a byte order mark, UTF-16, ``NaN`` and ``Infinity``
    and lone surrogates (``"\\ud800"``). Telegram sends none of them, and one such
    file under ``telegram/`` makes DuckDB's JSON functions fail for every query over
    the raw layer, so the webhook quarantines these bodies instead.
    """
    try:
        text = body.decode("utf-8")
        value = json.loads(text, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if _SURROGATE_ESCAPE.search(text) and not _is_encodable(value):
        return None
    return value


def inspect(update: Any) -> UpdateInfo | None:
    """Describe an update, or None when the value is not a Telegram update."""
    if not isinstance(update, dict):
        return None
    update_id = as_int(update.get("update_id"))
    if update_id is None:
        return None
    kind, payload = _payload(update)
    message = payload if kind in MESSAGE_KINDS else {}
    return UpdateInfo(
        update_id=update_id,
        kind=kind,
        chat_id=_chat_id(payload),
        timestamp=as_timestamp(payload.get("date")),
        migrate_to_chat_id=as_int(message.get("migrate_to_chat_id")),
        migrate_from_chat_id=as_int(message.get("migrate_from_chat_id")),
    )


def file_day(info: UpdateInfo, zone: ZoneInfo, arrived: datetime) -> date:
    """The partition day of an update: its message's own date, else its arrival.

    A date more than a day after the arrival is not a real one (Telegram's clock
    is not that far off): under it, the update would sit in a partition that no
    scheduled compaction reaches and that Athena's projection (``..., NOW``)
    hides, so the arrival day files it instead.
    """
    stamp = info.timestamp
    if stamp is not None and stamp <= arrived.timestamp() + FUTURE_SLACK_SECONDS:
        return datetime.fromtimestamp(stamp, zone).date()
    return arrived.astimezone(zone).date()


def as_int(value: Any) -> int | None:
    """A 64-bit integer, or None for anything else (booleans and huge numbers too)."""
    if type(value) is int and INT64_MIN <= value <= INT64_MAX:
        return value
    return None


def as_timestamp(value: Any) -> int | None:
    """A plausible Unix time in seconds, or None (Telegram sends 0 for unknown)."""
    number = as_int(value)
    if number is None or number <= 0 or number >= 1 << 35:
        return None
    return number


def message_row(update: Any, zone: ZoneInfo) -> dict[str, Any] | None:
    """The enriched row of an update that carries a message, as a dict, or None."""
    values = message_values(update, _clock(zone))
    if values is None:
        return None
    row = dict(zip(COLUMNS, values, strict=True))
    if row["sent_at"] is not None:
        row["sent_at"] = datetime.fromtimestamp(row["sent_at"] // 1000, UTC)
    if row["local_date"] is not None:
        row["local_date"] = EPOCH_DAY + timedelta(days=row["local_date"])
    return row


def message_values(update: Any, clock: LocalClock) -> tuple[Any, ...] | None:
    """The enriched row of an update that carries a message, or None.

    The values come in ``COLUMNS`` order, as Arrow stores them: ``sent_at`` in
    milliseconds since the epoch and ``local_date`` in days since it. Compaction
    calls this once per raw object, so it reads the update directly rather than
    through ``inspect``; both follow the same rules.
    """
    if not isinstance(update, dict):
        return None
    update_id = as_int(update.get("update_id"))
    if update_id is None:
        return None
    kind, message = _payload(update)
    if kind not in MESSAGE_KINDS:
        return None
    message_id = as_int(message.get("message_id"))
    chat_id = _chat_id(message)
    if message_id is None or chat_id is None:
        return None
    get = message.get
    sender = _dict(get("from"))
    chat = _dict(get("chat"))
    reply = _dict(get("reply_to_message"))
    content_type, service_type = _content_type(message)
    stamp = as_timestamp(get("date"))
    local_day, local_hour, local_weekday = clock.local(stamp)
    new_members = get("new_chat_members")
    return (
        message_id,
        as_int(sender.get("id")),
        _bool(sender.get("is_bot")),
        _str(sender.get("first_name")),
        chat_id,
        _str(chat.get("type")),
        _str(get("text")),
        as_int(get("date")),
        update_id,
        kind,
        stamp * 1000 if stamp is not None else None,
        as_timestamp(get("edit_date")),
        content_type,
        service_type,
        _str(get("caption")),
        _str(sender.get("last_name")),
        _str(sender.get("username")),
        _str(chat.get("title")),
        as_int(_dict(get("sender_chat")).get("id")),
        as_int(get("message_thread_id")),
        as_int(reply.get("message_id")),
        as_int(_dict(reply.get("from")).get("id")),
        _is_forwarded(message),
        len(new_members) if isinstance(new_members, list) else 0,
        as_int(_dict(get("left_chat_member")).get("id")),
        as_int(get("migrate_to_chat_id")),
        as_int(get("migrate_from_chat_id")),
        local_day,
        local_hour,
        local_weekday,
    )


def version(values: tuple[Any, ...], key: str) -> tuple[int, int, int, str]:
    """Which of several rows about one message wins: the latest edit, then the edit
    over the original, then the higher ``update_id``, then the raw key.

    ``values`` is a row as ``message_values`` gives it.
    """
    return (
        values[_EDIT_DATE] or 0,
        1 if values[_UPDATE_KIND] in EDIT_KINDS else 0,
        values[_UPDATE_ID],
        key,
    )


class LocalClock:
    """The local day, hour and ISO weekday of Unix times in one time zone.

    A zone keeps one UTC offset for almost every hour, so the offset is looked up
    once per UTC hour and the calendar is plain arithmetic; an hour that holds a
    change of offset takes the exact, slower way.
    """

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self._offsets: dict[int, int | None] = {}

    def local(self, stamp: int | None) -> tuple[int | None, int | None, int | None]:
        """(days since the epoch, hour, ISO weekday) in the zone; Nones for None."""
        if stamp is None:
            return None, None, None
        hour = stamp // 3600
        try:
            offset = self._offsets[hour]
        except KeyError:
            offset = self._offsets[hour] = self._steady_offset(hour * 3600)
        if offset is None:
            moment = datetime.fromtimestamp(stamp, self.zone)
            day = (moment.date() - EPOCH_DAY).days
            return day, moment.hour, moment.isoweekday()
        seconds = stamp + offset
        day = seconds // 86400
        # 1970-01-01 was a Thursday, ISO weekday 4.
        return day, seconds % 86400 // 3600, (day + 3) % 7 + 1

    def _steady_offset(self, start: int) -> int | None:
        """The offset in seconds through the hour from ``start``; None if it changes."""
        first = datetime.fromtimestamp(start, self.zone).utcoffset()
        last = datetime.fromtimestamp(start + 3599, self.zone).utcoffset()
        if first is None or first != last:
            return None
        return int(first.total_seconds())


@functools.lru_cache(maxsize=16)
def _clock(zone: ZoneInfo) -> LocalClock:
    return LocalClock(zone)


def _payload(update: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    for key, value in update.items():
        if key != "update_id" and isinstance(value, dict):
            return _kind(key), value
    others = [key for key in update if key != "update_id"]
    return (_kind(others[0]) if others else "empty"), {}


@functools.lru_cache(maxsize=256)
def _kind(key: str) -> str:
    # The kind is logged: a key that is not a plausible field name stays out.
    return key if KIND_PATTERN.fullmatch(key) else "unknown"


def _chat_id(payload: dict[str, Any]) -> int | None:
    chat = payload.get("chat")
    if not isinstance(chat, dict):
        # A callback query names its chat only through the message it came from.
        chat = _dict(_dict(payload.get("message")).get("chat"))
    return as_int(chat.get("id"))


def _is_forwarded(message: dict[str, Any]) -> bool:
    if _FORWARD_SET.isdisjoint(message):
        return False  # most messages: decided without a lookup per key
    return any(message.get(key) is not None for key in FORWARD_KEYS)


def _content_type(message: dict[str, Any]) -> tuple[str, str | None]:
    for key in CONTENT_KEYS:
        if message.get(key) is not None:
            return key, None
    for key in SERVICE_KEYS:
        if message.get(key) is not None and message.get(key) is not False:
            return "service", key
    return "other", None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _is_encodable(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError):
        # A value json.loads just managed may be too deep for json.dumps, which
        # starts further down the stack.
        return False
    return True


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # JSON may escape a lone surrogate, which no Parquet string can hold.
        return value.encode("utf-8", "replace").decode("utf-8")
    return value


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None
