"""Compaction: one day of raw updates into one deduplicated, typed Parquet file.

The rules:

- Every raw object right in the day's folder is listed (paginated) and read: by a
  bounded pool of threads sharing one client from S3, in line from a folder.
- An update that carries a message (``message``, ``edited_message``, ``channel_post``,
  ``edited_channel_post``) becomes a row; any other update stays in the raw layer and
  is counted as ``other``. An object that is not JSON, not an update, or a message
  without a usable ``message_id`` or chat id is skipped, counted and logged with its
  key; the rest of the day is still compacted. A day of which not one object could
  be read keeps its file.
- One row per ``(chat_id, message_id)``. The winner is the latest ``edit_date``, then
  an edit over the original, then the higher ``update_id``, then the raw key, so an
  edit replaces the text and a redelivery counts once.
- Rows are written sorted by ``(date, chat_id, message_id)`` with the one explicit
  schema in ``schema.py``, so a re-run gives the same file.
- Memory holds the dedup index (keys and versions) and at most ``SPILL_ROWS`` rows:
  a day with more rows spills them to a temporary Arrow file as they are read and
  takes the winners from it in row groups; a smaller day is written from memory.
- The file has a fixed name and replaces the old one in one write (S3 PUT, or a
  rename in a folder); any other Parquet file in the day's folder (from an older
  design) is removed only after that, so a crash never leaves a day without its file.
- A day with no raw objects writes nothing and keeps any file it has (an empty
  listing is more often a wrong ``TGLAKE_RAW`` than an erased day). A day whose
  objects hold no message loses its stale file.
- A day past the raw retention is not compacted from raw (``DayExpired``): a
  lifecycle rule or ``tglake purge`` may have removed part of it. A day whose raw
  objects vanish while it is read (``DayChanged``) keeps its file as it was.
- A lease in the enriched store keeps two compactions of a day apart. A lease whose
  run died is taken over after ``LEASE_SECONDS`` by exactly one later run.
- Late data: a dirty marker per late raw object (``mark_dirty``); the hourly job
  compacts each marked day once and then deletes the markers it saw, so an object
  that lands during that compaction keeps its marker for the next hour, and a crash
  leaves every marker in place.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import re
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from chalicelib import layout
from chalicelib.config import Settings
from chalicelib.errors import ObjectNotFound, TglakeError
from chalicelib.storage import Store
from chalicelib.updates import (
    COLUMNS,
    MESSAGE_KINDS,
    LocalClock,
    decode,
    inspect,
    message_values,
    version,
)

log = logging.getLogger(__name__)

READ_BATCH = 32
READ_AHEAD = 4
SPILL_ROWS = 20_000
ROW_GROUP = 50_000
LEASE_SECONDS = 15 * 60
# Another machine's clock may run ahead of ours by this much.
LEASE_CLOCK_SLACK = 5 * 60
OWNER_PATTERN = re.compile(r"[0-9a-f]{1,64}")
# What reading a damaged lease raises: not JSON, too deep, missing or odd fields, or
# a number of hundreds of digits.
UNREADABLE = (ValueError, KeyError, TypeError, RecursionError, OverflowError)
MESSAGE_ID, CHAT_ID, DATE = (
    COLUMNS.index(name) for name in ("message_id", "chat_id", "date")
)


# (chat_id, message_id) -> (version, spill row, date, chat_id, message_id)
Index = dict[tuple[int, int], tuple[Any, ...]]


class DayNotCompacted(TglakeError):
    """This day cannot be compacted now; other days can."""


class DayLocked(DayNotCompacted):
    """Another compaction of the same day holds its lease."""


class DayExpired(DayNotCompacted):
    """The day is past the raw retention: compacting it from raw would drop rows."""


class DayChanged(DayNotCompacted):
    """Raw objects of the day vanished while it was read (a purge or an erasure ran
    meanwhile); its file is left as it was, and the next run sees a settled day."""


@dataclass(frozen=True)
class DayResult:
    """What compacting one day did."""

    day: date
    objects: int = 0
    rows: int = 0
    skipped: int = 0
    other: int = 0
    duplicates: int = 0
    bytes: int = 0
    seconds: float = 0.0
    key: str | None = None

    def summary(self) -> str:
        return (
            f"{self.day} objects={self.objects} rows={self.rows} "
            f"skipped={self.skipped} other={self.other} "
            f"duplicates={self.duplicates} bytes={self.bytes} "
            f"seconds={self.seconds:.2f}"
        )


class Compactor:
    """Compacts days from a raw store into an enriched store."""

    def __init__(self, settings: Settings, raw: Store, enriched: Store) -> None:
        self.settings = settings
        self.raw = raw
        self.enriched = enriched

    def compact_day(
        self, day: date, *, progress: Callable[[int], None] | None = None
    ) -> DayResult:
        """Compact one day under its lease; raises DayLocked if it is held.

        A day past ``TGLAKE_RAW_RETENTION_DAYS`` raises DayExpired: its raw objects
        may be gone, and the file rebuilt from the rest would lose their rows.
        """
        if raw_is_expired(day, self.settings):
            raise DayExpired(
                f"day {day} is past the raw retention "
                f"({self.settings.raw_retention_days} days); its enriched file is "
                "kept as it is"
            )
        started = time.perf_counter()
        # boto3 makes reference cycles (3 per get_object, measured), which only the
        # cyclic collector frees: a day read from S3 keeps it running.
        collector = (
            contextlib.nullcontext() if self.raw.parallel_reads else _collector_paused()
        )
        with self.lease(day), collector:
            result = self._compact(day, progress)
        result = replace(result, seconds=time.perf_counter() - started)
        if result.objects:
            log.info("compacted day=%s", result.summary())
        else:
            log.info("compacted day=%s empty, nothing written", day)
        return result

    def raw_keys(self, day: date) -> list[str]:
        """Every raw object key of a day, in a stable order: the objects right in
        the day's folder, as the raw table in Athena reads them."""
        prefix = layout.day_prefix(day)
        return sorted(
            key
            for key in self.raw.keys(prefix)
            if key.endswith(layout.RAW_SUFFIX) and "/" not in key[len(prefix) :]
        )

    def _compact(self, day: date, progress: Callable[[int], None] | None) -> DayResult:
        with tempfile.TemporaryDirectory(prefix="tglake-") as folder:
            read = self._read_day(day, Path(folder) / "rows.arrow", progress)
            objects, counts = read.objects, read.counts
            if not objects:
                return DayResult(day)
            if counts["vanished"]:
                raise DayChanged(
                    f"{counts['vanished']} raw objects of {day} vanished while it "
                    "was compacted; its file is left as it was: run it again"
                )
            if not read.positions:
                if counts["skipped"]:
                    # Not one message could be read: a sign of damage, not of a day
                    # without messages.
                    log.warning("kept the enriched file day=%s reason=unreadable", day)
                else:
                    self._remove_stale(day, keep=None)
                return DayResult(day, objects, 0, counts["skipped"], counts["other"])
            out_path = Path(folder) / layout.ENRICHED_FILE
            read.rows.write(read.positions, out_path)
            key = layout.enriched_key(day)
            self.enriched.upload_file(key, out_path)
            size = out_path.stat().st_size
        self._remove_stale(day, keep=key)
        rows = len(read.positions)
        return DayResult(
            day,
            objects=objects,
            rows=rows,
            skipped=counts["skipped"],
            other=counts["other"],
            duplicates=counts["rows"] - rows,
            bytes=size,
            key=key,
        )

    def _read_day(
        self, day: date, path: Path, progress: Callable[[int], None] | None
    ) -> _Day:
        """Read every object of a day once and put the winners in the file's order."""
        keys = self.raw_keys(day)
        index, counts, rows = self._spill(keys, path, progress)
        order = sorted(index.values(), key=lambda entry: entry[2:])
        # Only the positions outlive this call: the memory of the keys and the
        # index goes to writing the file.
        return _Day(len(keys), counts, [entry[1] for entry in order], rows)

    def _spill(
        self, keys: list[str], path: Path, progress: Callable[[int], None] | None
    ) -> tuple[Index, dict[str, int], _Rows]:
        """Read every object once, index the winners, and keep every row."""
        index: Index = {}
        counts = {"rows": 0, "skipped": 0, "other": 0, "vanished": 0}
        clock = LocalClock(self.settings.zone)
        with _Rows(path) as rows:
            for batch in self._read(keys, progress):
                rows.extend(self._rows(batch, clock, counts, index))
        return index, counts, rows

    def _read(
        self, keys: list[str], progress: Callable[[int], None] | None
    ) -> Iterator[list[tuple[str, bytes | None]]]:
        """Bodies in key order, read by the pool a bounded window ahead of parsing."""
        if not self.raw.parallel_reads:
            # A local read is shorter than a thread switch, and more threads only
            # fight the parser for Python's lock: read in line.
            for start in range(0, len(keys), READ_BATCH):
                batch = keys[start : start + READ_BATCH]
                bodies = self._get_many(batch)
                if progress:
                    progress(len(batch))
                yield list(zip(batch, bodies, strict=True))
            return
        window = self.settings.read_threads * READ_AHEAD
        with ThreadPoolExecutor(max_workers=self.settings.read_threads) as pool:
            pending: deque[tuple[list[str], Future[list[bytes | None]]]] = deque()
            for start in range(0, len(keys), READ_BATCH):
                batch = keys[start : start + READ_BATCH]
                pending.append((batch, pool.submit(self._get_many, batch)))
                if len(pending) >= window:
                    yield self._collect(pending.popleft(), progress)
            while pending:
                yield self._collect(pending.popleft(), progress)

    @staticmethod
    def _collect(
        entry: tuple[list[str], Future[list[bytes | None]]],
        progress: Callable[[int], None] | None,
    ) -> list[tuple[str, bytes | None]]:
        batch, future = entry
        bodies = future.result()
        if progress:
            progress(len(batch))
        return list(zip(batch, bodies, strict=True))

    def _get_many(self, keys: list[str]) -> list[bytes | None]:
        # One task per few dozen keys: a future per object costs more than a
        # local read.
        return [self._get(key) for key in keys]

    def _get(self, key: str) -> bytes | None:
        try:
            return self.raw.get(key)
        except ObjectNotFound:
            # Erased or purged between listing and reading: the day is not settled.
            return None

    def _rows(
        self,
        chunk: list[tuple[str, bytes | None]],
        clock: LocalClock,
        counts: dict[str, int],
        index: Index,
    ) -> list[tuple[Any, ...]]:
        rows = []
        for key, body in chunk:
            if body is None:
                counts["vanished"] += 1
                log.warning("raw object vanished while read key=%r", key)
                continue
            update = _decode(body)
            row = message_values(update, clock)
            if row is None:
                reason = _unusable(update)
                if reason:
                    counts["skipped"] += 1
                    log.warning("skipped raw object key=%r reason=%s", key, reason)
                else:
                    counts["other"] += 1
                continue
            message = (row[CHAT_ID], row[MESSAGE_ID])
            current = version(row, key)
            known = index.get(message)
            if known is None or current > known[0]:
                index[message] = (current, counts["rows"], row[DATE] or 0, *message)
            rows.append(row)
            counts["rows"] += 1
        return rows

    def _remove_stale(self, day: date, *, keep: str | None) -> None:
        prefix = layout.day_prefix(day)
        stale = [
            key
            for key in self.enriched.keys(prefix)
            if key != keep and key.endswith(layout.ENRICHED_SUFFIX)
        ]
        if stale:
            self.enriched.delete(stale)
            log.info("removed stale enriched files day=%s count=%d", day, len(stale))

    def lease(self, day: date) -> _Lease:
        """The lease of one day, as a context manager."""
        return _Lease(self.enriched, day)


class _Lease:
    """An object created only if absent; one that outlived its run is taken over."""

    def __init__(self, store: Store, day: date) -> None:
        self.store = store
        self.day = day
        self.key = layout.lock_key(day)
        self.owner = uuid.uuid4().hex
        self.takeover: str | None = None

    def __enter__(self) -> _Lease:
        body = json.dumps(
            {"owner": self.owner, "expires": time.time() + LEASE_SECONDS}
        ).encode()
        if self.store.put_if_absent(self.key, body):
            return self
        held = self._held()
        if held is None:
            # Released between our two calls: one more plain attempt.
            if self.store.put_if_absent(self.key, body):
                return self
            raise DayLocked(f"day {self.day} is being compacted by another run")
        owner, expires = held
        if expires > time.time():
            raise DayLocked(f"day {self.day} is being compacted by another run")
        # Deleting and recreating an expired lease lets two runs both win; a
        # marker named after the dead owner can be created by one run only.
        takeover = layout.takeover_key(self.day, owner)
        if not self.store.put_if_absent(takeover, body):
            # A taker that died before writing its lease must not block forever.
            if _expiry(self.store, takeover) < time.time():
                self.store.delete([takeover])
            raise DayLocked(f"day {self.day}: another run is taking over its lease")
        self.takeover = takeover
        self.store.put(self.key, body)
        log.warning("took over expired lease day=%s", self.day)
        return self

    def __exit__(self, *exc: object) -> None:
        held = self._held()
        if held is not None and held[0] == self.owner:
            self.store.delete([self.key])
        if self.takeover:
            self.store.delete([self.takeover])

    def _held(self) -> tuple[str, float] | None:
        """The current owner and expiry; an unreadable lease counts as expired."""
        try:
            body = self.store.get(self.key)
        except ObjectNotFound:
            return None
        try:
            held = json.loads(body)
            owner, expires = held["owner"], float(held["expires"])
        except UNREADABLE:
            return layout.digest(body), 0.0
        if not isinstance(owner, str) or not OWNER_PATTERN.fullmatch(owner):
            return layout.digest(body), 0.0
        if not expires <= time.time() + LEASE_SECONDS + LEASE_CLOCK_SLACK:
            # No run writes a lease that long (or NaN): it would block the day forever.
            return layout.digest(body), 0.0
        return owner, expires


def _expiry(store: Store, key: str) -> float:
    """When a lease-like object expires; 0 when it is gone or unreadable."""
    try:
        return float(json.loads(store.get(key))["expires"])
    except (ObjectNotFound, *UNREADABLE):
        return 0.0


def parquet_writer(path: Path) -> Any:
    """A writer of one enriched file, with the schema and options of every day."""
    import pyarrow.parquet as pq

    from chalicelib.schema import SCHEMA

    return pq.ParquetWriter(str(path), SCHEMA, compression="zstd", version="2.6")


@dataclass(frozen=True)
class _Day:
    """A day read and deduplicated: what writing its file needs."""

    objects: int
    counts: dict[str, int]
    positions: list[int]  # the winners' rows, in the file's order
    rows: _Rows


class _Rows:
    """Every row of a day in read order: in memory up to ``SPILL_ROWS`` rows, and
    beyond that spilled to an Arrow file, so memory holds a bounded part of the day.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.buffer: list[tuple[Any, ...]] = []
        self.spilled = 0
        self._sink: Any = None
        self._writer: Any = None

    def __enter__(self) -> _Rows:
        return self

    def __exit__(self, error_type: type[BaseException] | None, *rest: object) -> None:
        if self._writer is None:
            return
        try:
            if error_type is None and self.buffer:
                self._flush()
            self._writer.close()
        finally:
            self._sink.close()

    def extend(self, rows: list[tuple[Any, ...]]) -> None:
        self.buffer.extend(rows)
        if len(self.buffer) >= SPILL_ROWS:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        from chalicelib.schema import SCHEMA, record_batch

        if self._writer is None:
            self._sink = pa.OSFile(str(self.path), "wb")
            self._writer = pa.ipc.new_file(self._sink, SCHEMA)
        self._writer.write_batch(record_batch(self.buffer))
        self.spilled += len(self.buffer)
        self.buffer = []

    def write(self, positions: list[int], out_path: Path) -> None:
        """Write the rows at ``positions``, in that order, as Parquet row groups."""
        with parquet_writer(out_path) as writer:
            for part in self._parts(positions):
                writer.write(part, row_group_size=ROW_GROUP)

    def _parts(self, positions: list[int]) -> Iterator[Any]:
        import pyarrow as pa

        from chalicelib.schema import record_batch

        slices = (
            positions[start : start + ROW_GROUP]
            for start in range(0, len(positions), ROW_GROUP)
        )
        if not self.spilled:
            # A small day never left memory: no spill to read back, no Arrow take.
            for part in slices:
                yield record_batch([self.buffer[i] for i in part])
            return
        # The spill is memory-mapped: only the row group being written is in memory.
        with pa.memory_map(str(self.path)) as source:
            table = pa.ipc.open_file(source).read_all()
            for part in slices:
                yield table.take(pa.array(part, pa.int64()))


def _unusable(update: Any) -> str | None:
    """Why a raw object that gave no row is skipped, or None for an update that
    simply carries no message (a reaction, a member change, a callback query)."""
    info = inspect(update)
    if info is None:
        return "not_an_update"
    if info.kind in MESSAGE_KINDS:
        # A message without a usable message_id or chat id (a string, a float, a
        # number beyond 64 bits) cannot be keyed, so it cannot become a row.
        return "unkeyed_message"
    return None


def _decode(body: bytes) -> Any:
    """The JSON value of a raw object, or None; orjson first, for speed.

    orjson refuses what only Python's ``json`` reads (a byte order mark, NaN, lone
    surrogates, numbers of thousands of digits, nesting past 1,023 levels); those
    bodies take ``updates.decode``. It reads a number beyond 64 bits as a float where
    ``json`` gives an int; the row rules take neither as an id, so the rows are the
    same. It also reads nesting of about 1,000 to 1,023 levels, which ``json`` may
    refuse (its limit is the interpreter's stack): such a raw object, which the
    webhook quarantines and so never stores, becomes a row instead of a skip.
    """
    import orjson

    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return decode(body)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a day is compacted from a folder.

    Parsing, sorting and building the columns allocate small objects by the
    hundred thousand and none of them form cycles, so reference counting frees them
    all; the collector would only walk the growing dedup index and rows again and
    again (about 15% of a day's time while parsing, and as much again after it,
    measured).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def mark_dirty(enriched: Store, day: date, name: str | None = None) -> None:
    """Note that a day needs compacting again.

    ``name`` tells markers apart (the S3 hook passes one per raw key, so a repeated
    event writes the same marker); without one, the marker is new.
    """
    enriched.put(layout.dirty_key(day, name or uuid.uuid4().hex), b"")


def dirty_markers(enriched: Store) -> dict[date, list[str]]:
    """The dirty markers, by day, oldest day first."""
    markers: dict[date, list[str]] = {}
    for item in enriched.list(layout.DIRTY_PREFIX):
        day = layout.dirty_day(item.key)
        if day is None:
            log.warning("ignored malformed dirty marker key=%r", item.key)
            continue
        markers.setdefault(day, []).append(item.key)
    return dict(sorted(markers.items()))


def dirty_days(enriched: Store) -> list[date]:
    """The days marked dirty, oldest first."""
    return list(dirty_markers(enriched))


def raw_is_expired(day: date, settings: Settings, now: datetime | None = None) -> bool:
    """Whether the raw partition of ``day`` is past the raw retention (0 keeps all)."""
    return is_expired(day, settings.raw_retention_days, lake_today(settings, now))


def is_expired(day: date, keep_days: int, today: date) -> bool:
    """Whether a partition is older than ``keep_days`` (0 keeps it forever)."""
    return keep_days > 0 and day < days_before(today, keep_days)


def days_before(today: date, days: int) -> date:
    """``today`` minus ``days``, or the first date there is for a longer span
    (a retention of a million days keeps everything, and must not overflow)."""
    if days >= (today - date.min).days:
        return date.min
    return today - timedelta(days=days)


def lake_today(settings: Settings, now: datetime | None = None) -> date:
    """Today (or the day of ``now``) in the lake's time zone."""
    return (now or datetime.now(UTC)).astimezone(settings.zone).date()


def is_late(day: date, settings: Settings, now: datetime | None = None) -> bool:
    """Whether an object for ``day`` arrives after the day may have been compacted."""
    return day < lake_today(settings, now)


def yesterday(settings: Settings, now: datetime | None = None) -> date:
    """Yesterday in the lake's time zone."""
    return lake_today(settings, now) - timedelta(days=1)
