"""The storage key layout: every key tglake reads or writes is built and parsed here.

Raw layer (the ``TGLAKE_RAW`` store)::

    telegram/context_date=YYYY-MM-DD/<bot>-<update_id>-<digest>.json
    quarantine/context_date=YYYY-MM-DD/<bot>-<digest>.body
    state/allowed-chats/<chat_id>.json
    state/poll/<bot>.json

Enriched layer (the ``TGLAKE_ENRICHED`` store)::

    telegram/context_date=YYYY-MM-DD/messages.parquet
    state/dirty/YYYY-MM-DD/<marker>
    state/locks/YYYY-MM-DD
    state/locks/YYYY-MM-DD.takeover-<owner>
    state/compact-all/<schema fingerprint>/YYYY-MM-DD

The day is the message's own date in the lake's time zone. The digest is a hash of
the body, so a redelivery of the same bytes overwrites itself while two different
bodies with the same ``update_id`` never collide.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date

RAW_PREFIX = "telegram/"
RAW_SUFFIX = ".json"
PARTITION = "context_date"
ENRICHED_FILE = "messages.parquet"
ENRICHED_SUFFIX = ".parquet"
QUARANTINE_PREFIX = "quarantine/"
ALLOWED_CHATS_PREFIX = "state/allowed-chats/"
DIRTY_PREFIX = "state/dirty/"
LOCKS_PREFIX = "state/locks/"
POLL_PREFIX = "state/poll/"
COMPACT_ALL_PREFIX = "state/compact-all/"
DIGEST_CHARS = 32

_RAW_NAME = re.compile(
    r"telegram/context_date=(?P<day>\d{4}-\d{2}-\d{2})/"
    r"(?P<bot>[A-Za-z0-9]+)-(?P<update>-?\d+|none)-(?P<digest>[0-9a-f]+)\.json"
)
_DAY_PREFIX = re.compile(r"(?:.*/)?context_date=(?P<day>\d{4}-\d{2}-\d{2})/")


@dataclass(frozen=True)
class RawKey:
    """The parts of a raw object's key."""

    day: date
    bot_id: str
    update_id: int | None
    digest: str


def digest(body: bytes) -> str:
    """A stable name for a body: the first characters of its SHA-256."""
    return hashlib.sha256(body).hexdigest()[:DIGEST_CHARS]


def day_prefix(day: date, root: str = RAW_PREFIX) -> str:
    """The folder of one day's partition under ``root``."""
    return f"{root}{PARTITION}={day.isoformat()}/"


def raw_key(day: date, bot_id: str, update_id: int | None, body: bytes) -> str:
    """Where one update's exact bytes are stored."""
    update = "none" if update_id is None else str(update_id)
    return f"{day_prefix(day)}{bot_id}-{update}-{digest(body)}{RAW_SUFFIX}"


def parse_raw_key(key: str) -> RawKey | None:
    """Split a raw key into its parts, or None when it is not one of ours."""
    match = _RAW_NAME.fullmatch(key)
    if match is None:
        return None
    update = match["update"]
    return RawKey(
        day=date.fromisoformat(match["day"]),
        bot_id=match["bot"],
        update_id=None if update == "none" else int(update),
        digest=match["digest"],
    )


def day_of_key(key: str) -> date | None:
    """The partition day named in any key, or None."""
    match = _DAY_PREFIX.match(key)
    if match is None:
        return None
    try:
        return date.fromisoformat(match["day"])
    except ValueError:
        return None


def quarantine_key(day: date, bot_id: str, body: bytes) -> str:
    """Where a body that is not a Telegram update is kept for inspection."""
    return f"{day_prefix(day, QUARANTINE_PREFIX)}{bot_id}-{digest(body)}.body"


def enriched_key(day: date) -> str:
    """The one Parquet file of a compacted day."""
    return f"{day_prefix(day)}{ENRICHED_FILE}"


def allowed_chat_key(chat_id: int) -> str:
    """A marker that a chat joined the allowlist at run time (a migration)."""
    return f"{ALLOWED_CHATS_PREFIX}{chat_id}.json"


def dirty_key(day: date, name: str = "day") -> str:
    """A marker that a compacted day received late updates; a day may have many."""
    return f"{DIRTY_PREFIX}{day.isoformat()}/{name}"


def dirty_day(key: str) -> date | None:
    """The day a dirty marker names, or None when the key is not a marker."""
    day, slash, name = key.removeprefix(DIRTY_PREFIX).partition("/")
    if not key.startswith(DIRTY_PREFIX) or not slash or not name:
        return None
    try:
        return date.fromisoformat(day)
    except ValueError:
        return None


def lock_key(day: date) -> str:
    """The lease that keeps two compactions of a day apart."""
    return f"{LOCKS_PREFIX}{day.isoformat()}"


def takeover_key(day: date, owner: str) -> str:
    """Created by the one run that may take over a day's expired lease."""
    return f"{lock_key(day)}.takeover-{owner}"


def poll_offset_key(bot_id: str) -> str:
    """Where ``tglake poll`` keeps the next ``getUpdates`` offset."""
    return f"{POLL_PREFIX}{bot_id}.json"


def compact_all_key(fingerprint: str, day: date) -> str:
    """A marker that ``compact --all`` finished a day under one enriched schema."""
    return f"{COMPACT_ALL_PREFIX}{fingerprint}/{day.isoformat()}"
