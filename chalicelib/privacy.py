"""Erasure and retention: forgetting a person or a chat, and expiring old days.

Erasure (``tglake forget``) follows these rules:

- A raw update *about* a subject is deleted. For a user: one they sent (``from``,
  the ``user`` of a reaction or poll answer), a forward of their message, one where
  they join, leave or change membership, and anything in their private chat with
  the bot. For a chat: every update in it, every post sent as it (``sender_chat``,
  ``actor_chat``) and every forward from it. A positive chat id is a private chat,
  which is its person too.
- Any other raw update that mentions a subject is redacted: user and chat objects
  with their id are removed, a replied-to, pinned or quoted message of theirs is cut
  down to its ``message_id``, and id fields naming them are dropped. The redacted
  bytes are stored under their own digest and the old key is removed; a key already
  deleted on S3 (a delete marker is current) is removed with its versions instead.
- Every enriched file is filtered on its own, so days whose raw objects have expired
  are erased too: rows they sent, rows about them leaving, rows in their chat and
  rows of deleted raw updates are dropped; ``reply_to_user_id`` and migration ids
  naming them become null. The file keeps the declared schema and is replaced under
  the day's compaction lease; a day left without rows loses its file.
- On S3, every version and delete marker of a removed raw key is deleted, and so is
  every older version of a rewritten enriched file and any noncurrent enriched
  version holding their rows. Listing uses ``ListObjectVersions`` whether or not the
  bucket is versioned.
- Words typed by others (a name written out in a message) are not changed: that text
  is someone else's message. The enriched table records that a row is a forward but
  not whose, so once raw objects have expired a forward of their message stays.

Retention (``tglake purge``) removes whole partitions older than N days, counted in
the lake's time zone; on S3 it removes every version of those keys.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from chalicelib import layout, runtime
from chalicelib.compaction import days_before, is_expired, lake_today
from chalicelib.config import Settings
from chalicelib.errors import ObjectNotFound, StorageError, TglakeError
from chalicelib.storage import S3Store, Store, error_code
from chalicelib.updates import as_int, decode, message_row

if TYPE_CHECKING:
    import pyarrow as pa

    from chalicelib.compaction import Compactor

log = logging.getLogger(__name__)

READ_CHUNK = 500
UTC_ZONE = ZoneInfo("UTC")
RAW_LAYER = "raw"
ENRICHED_LAYER = "enriched"
LAYERS = (RAW_LAYER, ENRICHED_LAYER)

# Where an update names the user it is about (paths into the update's payload).
_USER_PATHS = (
    ("from",),
    ("user",),
    ("left_chat_member",),
    ("left_chat_participant",),
    ("new_chat_member",),
    ("new_chat_participant",),
    ("old_chat_member", "user"),
    ("new_chat_member", "user"),
    ("chat",),
    ("message", "chat"),
    ("forward_from",),
    ("forward_origin", "sender_user"),
)
# Where an update names the chat it belongs to, is sent as, or is forwarded from.
_CHAT_PATHS = (
    ("chat",),
    ("message", "chat"),
    ("sender_chat",),
    ("actor_chat",),
    ("voter_chat",),
    ("forward_from_chat",),
    ("forward_origin", "sender_chat"),
    ("forward_origin", "chat"),
)
# A user, chat or contact object always carries one of these beside its id.
_PERSON_KEYS = frozenset(
    {"first_name", "last_name", "username", "is_bot", "type", "title", "phone_number"}
)
# Integer fields that name a user or chat without an object around them.
_ID_FIELDS = frozenset(
    {"migrate_to_chat_id", "migrate_from_chat_id", "user_id", "chat_id", "user_chat_id"}
)
_QUOTED = ("reply_to_message", "external_reply")
_GONE = object()


@dataclass(frozen=True)
class Subjects:
    """Who is being forgotten: user ids and chat ids."""

    users: frozenset[int] = frozenset()
    chats: frozenset[int] = frozenset()

    @classmethod
    def of(cls, users: Iterable[int] = (), chats: Iterable[int] = ()) -> Subjects:
        """Subjects where a private chat (a positive chat id) is its person too."""
        chats = frozenset(chats)
        private = {chat for chat in chats if chat > 0}
        return cls(frozenset(users) | private, chats)

    @property
    def ids(self) -> frozenset[int]:
        return self.users | self.chats

    def __bool__(self) -> bool:
        return bool(self.users or self.chats)


# -- deciding what an update or a row has to do with the subjects ----------------


def is_about(update: Any, subjects: Subjects) -> bool:
    """Whether an update is theirs (sent by, about the membership of, or in)."""
    if not isinstance(update, dict):
        return False
    payload = next(
        (v for k, v in update.items() if k != "update_id" and isinstance(v, dict)), {}
    )
    if any(_id_at(payload, path) in subjects.users for path in _USER_PATHS):
        return True
    if any(_id_at(payload, path) in subjects.chats for path in _CHAT_PATHS):
        return True
    members = payload.get("new_chat_members")
    if isinstance(members, list):
        return any(_id_at(member, ()) in subjects.users for member in members)
    return False


def redact(value: Any, ids: frozenset[int]) -> Any:
    """A copy with every user or chat object, message and id field naming ``ids``
    removed; equal to ``value`` when nothing names them."""
    return _scrub(value, ids, 0)


def _scrub(value: Any, ids: frozenset[int], depth: int) -> Any:
    if isinstance(value, list):
        items = (_scrub(item, ids, depth + 1) for item in value)
        return [item for item in items if item is not _GONE]
    if not isinstance(value, dict):
        return value
    # The update and its payload are never cut: is_about decides about those.
    if depth >= 2 and _is_person(value, ids):
        return _GONE
    if depth >= 2 and _is_their_message(value, ids):
        message_id = as_int(value.get("message_id"))
        return _GONE if message_id is None else {"message_id": message_id}
    result: dict[str, Any] = {}
    for key, item in value.items():
        if key in _ID_FIELDS and as_int(item) in ids:
            continue
        scrubbed = _scrub(item, ids, depth + 1)
        if scrubbed is not _GONE:
            result[key] = scrubbed
    # A quote is a piece of the replied-to message: it goes with that message.
    if any(result.get(key) != value.get(key) for key in _QUOTED if key in value):
        result.pop("quote", None)
    return result


def _is_person(value: dict[str, Any], ids: frozenset[int]) -> bool:
    named = as_int(value.get("id")) in ids or as_int(value.get("user_id")) in ids
    return named and not _PERSON_KEYS.isdisjoint(value)


def _is_their_message(value: dict[str, Any], ids: frozenset[int]) -> bool:
    if "message_id" not in value and "origin" not in value:
        return False
    paths = (
        ("from",),
        ("sender_chat",),
        ("chat",),
        ("origin", "sender_user"),
        ("origin", "sender_chat"),
        ("origin", "chat"),
    )
    return any(_id_at(value, path) in ids for path in paths)


def _id_at(value: Any, path: tuple[str, ...]) -> int | None:
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    if isinstance(value, dict):
        return as_int(value.get("id"))
    return None


def filter_rows(
    table: pa.Table,
    subjects: Subjects,
    messages: frozenset[tuple[int, int]] = frozenset(),
) -> tuple[pa.Table, int, int]:
    """The rows without the subjects; also how many rows went and cells were nulled.

    ``table`` must have the declared schema (see ``maintenance.conform``).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    users = pa.array(sorted(subjects.users), pa.int64())
    chats = pa.array(sorted(subjects.chats), pa.int64())

    def hit(source: pa.Table, column: str, values: pa.Array) -> pa.Array:
        return pc.fill_null(pc.is_in(source[column], value_set=values), False)

    drops = [
        hit(table, "user_id", users),
        hit(table, "left_member_id", users),
        hit(table, "chat_id", users),
        hit(table, "chat_id", chats),
        hit(table, "sender_chat_id", chats),
    ]
    if messages:
        pairs = zip(
            table["chat_id"].to_pylist(), table["message_id"].to_pylist(), strict=True
        )
        drops.append(pa.array([pair in messages for pair in pairs], pa.bool_()))
    drop = drops[0]
    for more in drops[1:]:
        drop = pc.or_(drop, more)
    kept = table.filter(pc.invert(drop))
    nulled = 0
    for column, values in (
        ("reply_to_user_id", users),
        ("migrate_to_chat_id", chats),
        ("migrate_from_chat_id", chats),
    ):
        mask = hit(kept, column, values)
        count = pc.sum(mask).as_py() or 0
        if count:
            index = kept.schema.get_field_index(column)
            empty = pa.scalar(None, kept.schema.field(column).type)
            kept = kept.set_column(
                index, kept.schema.field(column), pc.if_else(mask, empty, kept[column])
            )
            nulled += count
    return kept, table.num_rows - kept.num_rows, nulled


# -- every stored state of a key: a folder's file or every S3 version --------------


@dataclass(frozen=True)
class Version:
    """One stored state of a key; ``id`` is None for a folder's file."""

    id: str | None
    is_latest: bool = True
    is_marker: bool = False


def listing(store: Store, prefix: str) -> Iterator[tuple[str, list[Version]]]:
    """Every key under ``prefix`` with its versions, newest first, in key order.

    On S3 this includes keys that only noncurrent versions or delete markers hold.
    """
    if not isinstance(store, S3Store):
        for item in store.list(prefix):
            yield item.key, [Version(None)]
        return
    from botocore.exceptions import BotoCoreError, ClientError

    paginator = store.client.get_paginator("list_object_versions")
    pending: dict[str, list[Version]] = {}
    try:
        for page in paginator.paginate(
            Bucket=store.bucket, Prefix=store.prefix + prefix
        ):
            for item in page.get("Versions", []):
                version = Version(item["VersionId"], item["IsLatest"], False)
                pending.setdefault(item["Key"], []).append(version)
            for item in page.get("DeleteMarkers", []):
                version = Version(item["VersionId"], item["IsLatest"], True)
                pending.setdefault(item["Key"], []).append(version)
            # A key's versions may go on in the next page; earlier keys are complete.
            boundary = page.get("NextKeyMarker") if page.get("IsTruncated") else None
            for key in sorted(pending):
                if boundary is not None and key >= boundary:
                    break
                yield key[len(store.prefix) :], _newest_first(pending.pop(key))
    except (BotoCoreError, ClientError) as error:
        raise StorageError(
            f"cannot list versions: {error_code(error)}",
            location=store.location,
            key=prefix,
        ) from error
    for key in sorted(pending):
        yield key[len(store.prefix) :], _newest_first(pending[key])


def _newest_first(versions: list[Version]) -> list[Version]:
    return sorted(versions, key=lambda version: not version.is_latest)


def read_version(store: Store, key: str, version: Version) -> bytes:
    """The bytes of one stored state of a key."""
    if version.id is None or not isinstance(store, S3Store):
        return store.get(key)
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        reply = store.client.get_object(
            Bucket=store.bucket, Key=store.prefix + key, VersionId=version.id
        )
        return reply["Body"].read()
    except (BotoCoreError, ClientError) as error:
        code = error_code(error)
        if code in ("NoSuchKey", "NoSuchVersion", "404"):
            raise ObjectNotFound(
                "no such version", location=store.location, key=key
            ) from error
        raise StorageError(
            f"cannot read version: {code}", location=store.location, key=key
        ) from error


def erase(store: Store, entries: Iterable[tuple[str, list[Version]]]) -> int:
    """Remove keys for good: a folder's files, or the listed S3 versions and markers.

    Returns how many files or versions were removed.
    """
    if not isinstance(store, S3Store):
        keys = [key for key, _ in entries]
        store.delete(keys)
        return len(keys)
    return store.delete_versions(
        (key, version.id) for key, versions in entries for version in versions
    )


def erase_older(store: Store, key: str) -> int:
    """On S3, remove every version of ``key`` except the live one; else nothing."""
    if not isinstance(store, S3Store):
        return 0
    for listed, versions in listing(store, key):
        if listed == key:
            older = [version for version in versions if not version.is_latest]
            return erase(store, [(key, older)])
    return 0


# -- erasure ---------------------------------------------------------------------


class ErasureIncomplete(TglakeError):
    """Part of an erasure could not be done; running ``forget`` again finishes it."""


@dataclass(frozen=True)
class RawAction:
    """A raw key to delete, or to replace by its redacted bytes."""

    key: str
    versions: list[Version]
    body: bytes | None = None
    message: tuple[int, int] | None = None

    @property
    def day(self) -> date | None:
        return layout.day_of_key(self.key)


@dataclass(frozen=True)
class EnrichedAction:
    """An enriched file to rewrite and its noncurrent versions holding their rows."""

    key: str
    rows_dropped: int = 0
    cells_nulled: int = 0
    rewrite: bool = False
    old_versions: list[Version] = field(default_factory=list)

    @property
    def day(self) -> date | None:
        return layout.day_of_key(self.key)


@dataclass(frozen=True)
class DayCounts:
    """What an erasure touches on one day."""

    raw_deleted: int = 0
    raw_redacted: int = 0
    rows_dropped: int = 0
    cells_nulled: int = 0
    old_versions: int = 0

    def summary(self) -> str:
        return (
            f"raw_deleted={self.raw_deleted} raw_redacted={self.raw_redacted} "
            f"rows_dropped={self.rows_dropped} cells_nulled={self.cells_nulled} "
            f"old_versions={self.old_versions}"
        )


@dataclass
class ErasurePlan:
    """What ``forget`` found: nothing has been changed yet."""

    subjects: Subjects
    raw: list[RawAction] = field(default_factory=list)
    enriched: list[EnrichedAction] = field(default_factory=list)
    scanned: int = 0
    unreadable: int = 0

    @property
    def is_empty(self) -> bool:
        return not self.raw and not self.enriched

    @property
    def messages(self) -> frozenset[tuple[int, int]]:
        return frozenset(a.message for a in self.raw if a.message and a.body is None)

    def by_day(self) -> dict[date | None, DayCounts]:
        """Counts per partition day, for the plan's printout."""
        days: dict[date | None, dict[str, int]] = {}
        for action in self.raw:
            counts = days.setdefault(action.day, {})
            name = "raw_deleted" if action.body is None else "raw_redacted"
            counts[name] = counts.get(name, 0) + 1
        for action in self.enriched:
            counts = days.setdefault(action.day, {})
            for name in ("rows_dropped", "cells_nulled"):
                counts[name] = counts.get(name, 0) + getattr(action, name)
            older = len(action.old_versions)
            counts["old_versions"] = counts.get("old_versions", 0) + older
        ordered = sorted(days, key=lambda day: day or date.min)
        return {day: DayCounts(**days[day]) for day in ordered}


def plan_erasure(
    settings: Settings,
    subjects: Subjects,
    *,
    progress: Callable[[int], None] | None = None,
) -> ErasurePlan:
    """Find every raw object and enriched file that holds the subjects."""
    if not subjects:
        raise TglakeError("name at least one user or chat to forget")
    raw, enriched = runtime.store(settings.raw), runtime.store(settings.enriched)
    plan = ErasurePlan(subjects)
    for prefix in (layout.RAW_PREFIX, layout.QUARANTINE_PREFIX):
        for chunk in _chunks(listing(raw, prefix), READ_CHUNK):
            _judge_raw(raw, chunk, plan, settings.read_threads)
            if progress:
                progress(len(chunk))
    messages = plan.messages
    for key, versions in listing(enriched, layout.RAW_PREFIX):
        if key.endswith(".parquet"):
            action = _judge_enriched(enriched, key, versions, subjects, messages)
            if action is not None:
                plan.enriched.append(action)
    log.info(
        "planned erasure scanned=%d raw_actions=%d enriched_files=%d unreadable=%d",
        plan.scanned,
        len(plan.raw),
        len(plan.enriched),
        plan.unreadable,
    )
    return plan


def _judge_raw(
    store: Store,
    chunk: list[tuple[str, list[Version]]],
    plan: ErasurePlan,
    threads: int,
) -> None:
    readable = [
        (key, versions, next(v for v in versions if not v.is_marker))
        for key, versions in chunk
        if any(not version.is_marker for version in versions)
    ]

    def read(entry: tuple[str, list[Version], Version]) -> bytes | None:
        try:
            return read_version(store, entry[0], entry[2])
        except ObjectNotFound:
            return None

    with ThreadPoolExecutor(max_workers=threads) as pool:
        bodies = list(pool.map(read, readable))
    for (key, versions, _), body in zip(readable, bodies, strict=True):
        if body is None:
            continue
        plan.scanned += 1
        update = decode(body)
        if update is None:
            plan.unreadable += 1
            continue
        if is_about(update, plan.subjects):
            row = message_row(update, UTC_ZONE)
            message = (row["chat_id"], row["message_id"]) if row else None
            plan.raw.append(RawAction(key, versions, message=message))
            continue
        try:
            redacted = redact(update, plan.subjects.ids)
        except RecursionError:
            # Nested deeper than Python recurses: no update is; counted like non-JSON.
            plan.unreadable += 1
            log.warning("could not inspect raw object key=%r reason=too_deep", key)
            continue
        if redacted == update:
            continue
        # A quarantined body has nothing worth keeping; a key deleted before (only
        # old versions hold it) would come back to life as its redacted copy.
        if key.startswith(layout.QUARANTINE_PREFIX) or versions[0].is_marker:
            plan.raw.append(RawAction(key, versions))
        else:
            plan.raw.append(RawAction(key, versions, body=_encode(redacted)))


def _judge_enriched(
    store: Store,
    key: str,
    versions: list[Version],
    subjects: Subjects,
    messages: frozenset[tuple[int, int]],
) -> EnrichedAction | None:
    from chalicelib.maintenance import conform, read_bytes

    current: tuple[int, int] | None = None
    old: list[Version] = []
    for version in versions:
        if version.is_marker:
            continue
        table = conform(read_bytes(read_version(store, key, version), key))
        _, dropped, nulled = filter_rows(table, subjects, messages)
        if not dropped and not nulled:
            continue
        if version.is_latest:
            current = (dropped, nulled)
        else:
            old.append(version)
    if current is None and not old:
        return None
    dropped, nulled = current or (0, 0)
    return EnrichedAction(key, dropped, nulled, current is not None, old)


def apply_erasure(
    settings: Settings,
    plan: ErasurePlan,
    *,
    progress: Callable[[int], None] | None = None,
) -> dict[date | None, DayCounts]:
    """Carry out a plan: raw objects first, then every affected enriched file."""
    from chalicelib import jobs
    from chalicelib.compaction import DayLocked

    worker = jobs.compactor(settings)
    for action in plan.raw:
        _apply_raw(worker.raw, action)
        if progress:
            progress(1)
    locked = []
    for action in plan.enriched:
        try:
            _apply_enriched(worker, action, plan)
        except DayLocked:
            locked.append(action.day)
        if progress:
            progress(1)
    log.info(
        "erased raw_actions=%d enriched_files=%d locked=%d",
        len(plan.raw),
        len(plan.enriched),
        len(locked),
    )
    if locked:
        days = ", ".join(str(day) for day in locked)
        raise ErasureIncomplete(
            f"days {days} were being compacted; their raw objects are erased, run "
            "forget again once compaction has finished to rewrite their files"
        )
    return plan.by_day()


def _apply_raw(store: Store, action: RawAction) -> None:
    if action.body is not None:
        parts = layout.parse_raw_key(action.key)
        new_key = action.key
        if parts is not None:
            new_key = layout.raw_key(
                parts.day, parts.bot_id, parts.update_id, action.body
            )
        store.put(new_key, action.body)
        if new_key == action.key:
            erase_older(store, action.key)
            return
    erase(store, [(action.key, action.versions)])


def _apply_enriched(
    worker: Compactor, action: EnrichedAction, plan: ErasurePlan
) -> None:
    import tempfile

    from chalicelib.maintenance import conform, read_day, write_day

    store = worker.enriched
    if action.old_versions:
        erase(store, [(action.key, action.old_versions)])
    if not action.rewrite or action.day is None:
        return
    with (
        worker.lease(action.day),
        tempfile.TemporaryDirectory(prefix="tglake-") as folder,
    ):
        try:
            table = conform(read_day(store, action.key, Path(folder)), day=action.day)
        except ObjectNotFound:
            return
        kept, dropped, nulled = filter_rows(table, plan.subjects, plan.messages)
        if kept.num_rows:
            write_day(store, action.key, kept, Path(folder))
            erase_older(store, action.key)
        else:
            entries = listing(store, action.key)
            erase(store, [(key, v) for key, v in entries if key == action.key])
    log.info(
        "rewrote enriched day=%s rows=%d dropped=%d nulled=%d",
        action.day,
        kept.num_rows,
        dropped,
        nulled,
    )


def _encode(update: Any) -> bytes:
    # One line, as Telegram sends it: Athena's JSON readers need one object a line.
    return json.dumps(update, ensure_ascii=False, separators=(",", ":")).encode()


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# -- retention -------------------------------------------------------------------


@dataclass
class PurgePlan:
    """The keys of expired partitions, per day."""

    layer: str
    older_than: int
    before: date
    days: dict[date, list[tuple[str, list[Version]]]] = field(default_factory=dict)

    @property
    def objects(self) -> int:
        return sum(len(entries) for entries in self.days.values())


def retention_days(settings: Settings, layer: str) -> int:
    """The configured retention of a layer, in days (0 keeps forever)."""
    if layer == RAW_LAYER:
        return settings.raw_retention_days
    return settings.enriched_retention_days


def plan_purge(
    settings: Settings,
    *,
    layer: str = RAW_LAYER,
    older_than: int,
    bot_id: str | None = None,
    today: date | None = None,
) -> PurgePlan:
    """Find the keys of partitions more than ``older_than`` days before today."""
    if layer not in LAYERS:
        raise TglakeError(f"layer must be one of {', '.join(LAYERS)}, not {layer!r}")
    if older_than < 1:
        raise TglakeError("--older-than must be at least 1 day")
    today = today or lake_today(settings)
    store = runtime.store(settings.raw if layer == RAW_LAYER else settings.enriched)
    plan = PurgePlan(layer, older_than, days_before(today, older_than))
    prefixes = [layout.RAW_PREFIX]
    prefixes.append(
        layout.QUARANTINE_PREFIX if layer == RAW_LAYER else layout.DIRTY_PREFIX
    )
    for prefix in prefixes:
        for key, versions in listing(store, prefix):
            day = _partition_day(key)
            if day is None or not is_expired(day, older_than, today):
                continue
            if bot_id is not None and _bot_of(key) != bot_id:
                continue
            plan.days.setdefault(day, []).append((key, versions))
    plan.days = dict(sorted(plan.days.items()))
    return plan


def apply_purge(
    settings: Settings,
    plan: PurgePlan,
    *,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Remove a purge plan's keys (every S3 version); returns the objects removed."""
    layer = settings.raw if plan.layer == RAW_LAYER else settings.enriched
    store = runtime.store(layer)
    removed = 0
    for day, entries in plan.days.items():
        erase(store, entries)
        removed += len(entries)
        log.info("purged layer=%s day=%s objects=%d", plan.layer, day, len(entries))
        if progress:
            progress(len(entries))
    return removed


def _partition_day(key: str) -> date | None:
    if key.startswith(layout.DIRTY_PREFIX):
        return layout.dirty_day(key)
    return layout.day_of_key(key)


def _bot_of(key: str) -> str | None:
    parts = layout.parse_raw_key(key)
    if parts is not None:
        return parts.bot_id
    if key.startswith(layout.QUARANTINE_PREFIX):
        return key.rpartition("/")[2].partition("-")[0]
    return None
