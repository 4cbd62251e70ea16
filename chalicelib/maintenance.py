"""Maintenance of the enriched layer: rewriting every day after a schema change.

``compact_all`` brings every day's Parquet file to the current ``SCHEMA``:

- A day whose raw objects are still kept (inside the raw retention) is compacted
  again from raw, under its lease, exactly as the daily job does.
- A day whose raw objects are gone (or past the raw retention, where a lifecycle
  rule may have removed only part of them) keeps its rows: its enriched file is read,
  missing columns are added as nulls, the others are cast to the declared types,
  columns no longer declared are dropped, and the file is replaced in one write.
- Days past the enriched retention are left for ``tglake purge`` to remove.
- Each finished day leaves a marker named by the schema's fingerprint, so an
  interrupted run resumes where it stopped and a later schema change starts over.
  A run that finishes every day removes the markers, so the next run is a full one.

Athena reads Parquet columns by name, so old and new files answer the same queries
while the run is under way: a column a file lacks reads as null.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalicelib import jobs, layout, runtime
from chalicelib.compaction import (
    ROW_GROUP,
    Compactor,
    DayLocked,
    DayNotCompacted,
    DayResult,
    is_expired,
    lake_today,
    parquet_writer,
)
from chalicelib.config import Settings
from chalicelib.errors import TglakeError
from chalicelib.storage import Store

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)

FROM_RAW = "raw"
FROM_ENRICHED = "enriched"


class MaintenanceIncomplete(TglakeError):
    """Some days could not be rewritten; running the command again resumes."""


class SchemaMismatch(TglakeError):
    """An enriched file holds a column that cannot be cast to its declared type."""


class EnrichedUnreadable(TglakeError):
    """An enriched file is not Parquet that pyarrow can read."""


@dataclass(frozen=True)
class PlannedDay:
    """One day ``compact_all`` will rewrite, and where its rows come from."""

    day: date
    source: str


def schema_fingerprint() -> str:
    """A short name for the current enriched schema (column names, types, order)."""
    from chalicelib.schema import SCHEMA

    text = SCHEMA.to_string(show_field_metadata=False, show_schema_metadata=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def plan_all(
    settings: Settings, *, resume: bool = True, today: date | None = None
) -> list[PlannedDay]:
    """The days ``compact_all`` would rewrite now, oldest first."""
    raw, enriched = runtime.store(settings.raw), runtime.store(settings.enriched)
    today = today or lake_today(settings)
    raw_days = _days(raw, layout.RAW_SUFFIX)
    enriched_days = _days(enriched, "/" + layout.ENRICHED_FILE)
    done = _finished(enriched) if resume else set()
    planned = []
    for day in sorted(raw_days | enriched_days):
        if day in done or is_expired(day, settings.enriched_retention_days, today):
            continue
        from_raw = day in raw_days and not is_expired(
            day, settings.raw_retention_days, today
        )
        if from_raw or day in enriched_days:
            planned.append(PlannedDay(day, FROM_RAW if from_raw else FROM_ENRICHED))
    return planned


def compact_all(
    settings: Settings,
    *,
    progress: Callable[[DayResult], None] | None = None,
    resume: bool = True,
) -> list[DayResult]:
    """Rewrite every day to the current schema; ``progress`` hears of each day."""
    worker = jobs.compactor(settings)
    enriched = worker.enriched
    fingerprint = schema_fingerprint()
    if not resume:
        _clear_markers(enriched)
    results, locked, failed = [], [], []
    for planned in plan_all(settings, resume=resume):
        try:
            if planned.source == FROM_RAW:
                result = worker.compact_day(planned.day)
            else:
                result = rewrite_day(worker, planned.day)
        except DayLocked:
            log.warning("compact-all skipped day=%s reason=locked", planned.day)
            locked.append(planned.day)
            continue
        except (DayNotCompacted, SchemaMismatch, EnrichedUnreadable) as error:
            # This day's trouble: the run goes on with the others.
            log.error("compact-all failed day=%s error=%s", planned.day, error)
            failed.append(planned.day)
            continue
        marker = {"source": planned.source, "rows": result.rows}
        enriched.put(
            layout.compact_all_key(fingerprint, planned.day),
            json.dumps(marker).encode(),
        )
        log.info("compact-all day=%s source=%s", planned.day, planned.source)
        results.append(result)
        if progress:
            progress(result)
    if locked or failed:
        raise MaintenanceIncomplete(_unfinished(locked, failed))
    _clear_markers(enriched)
    return results


def _unfinished(locked: list[date], failed: list[date]) -> str:
    parts = []
    if locked:
        days = ", ".join(day.isoformat() for day in locked)
        parts.append(f"{len(locked)} days were being compacted by another run ({days})")
    if failed:
        days = ", ".join(day.isoformat() for day in failed)
        parts.append(f"{len(failed)} days failed ({days}; the log says why)")
    return "; ".join(parts) + "; run the command again to finish them"


def rewrite_day(worker: Compactor, day: date) -> DayResult:
    """Bring one day's enriched file to the current schema, keeping its rows."""
    started = time.perf_counter()
    key = layout.enriched_key(day)
    with worker.lease(day), tempfile.TemporaryDirectory(prefix="tglake-") as folder:
        table = conform(read_day(worker.enriched, key, Path(folder)), day=day)
        size = write_day(worker.enriched, key, table, Path(folder))
    seconds = time.perf_counter() - started
    log.info("rewrote enriched day=%s rows=%d bytes=%d", day, table.num_rows, size)
    return DayResult(day, rows=table.num_rows, bytes=size, seconds=seconds, key=key)


def read_day(store: Store, key: str, folder: Path) -> pa.Table:
    """Read one enriched file as it is, whatever schema it was written with."""
    path = folder / "current.parquet"
    store.download_file(key, path)
    return _read_parquet(str(path), key)


def read_bytes(data: bytes, key: str) -> pa.Table:
    """Read an enriched file held in memory (an S3 object version)."""
    import pyarrow as pa

    return _read_parquet(pa.BufferReader(data), key)


def _read_parquet(source: Any, key: str) -> pa.Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(source)
    except (pa.ArrowException, OSError):
        raise EnrichedUnreadable(f"{key} cannot be read as Parquet") from None


def conform(table: pa.Table, *, day: date | None = None) -> pa.Table:
    """The same rows with exactly the declared columns: missing ones as nulls."""
    import pyarrow as pa

    from chalicelib.schema import SCHEMA

    columns = []
    for field in SCHEMA:
        if field.name not in table.column_names:
            columns.append(pa.nulls(table.num_rows, field.type))
            continue
        column = table.column(field.name)
        try:
            columns.append(column.cast(field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            # Arrow's reason names the value that failed, which may be a name.
            raise SchemaMismatch(
                f"column {field.name} of day {day} is {column.type} and cannot "
                f"become {field.type}"
            ) from None
    return pa.Table.from_arrays(columns, schema=SCHEMA)


def write_day(store: Store, key: str, table: pa.Table, folder: Path) -> int:
    """Write a day's rows as compaction does and replace its file in one write."""
    path = folder / layout.ENRICHED_FILE
    with parquet_writer(path) as out:
        out.write_table(conform(table), row_group_size=ROW_GROUP)
    store.upload_file(key, path)
    return path.stat().st_size


def _days(store: Store, suffix: str) -> set[date]:
    days = set()
    for item in store.list(layout.RAW_PREFIX):
        day = layout.day_of_key(item.key)
        if day is not None and item.key.endswith(suffix):
            days.add(day)
    return days


def _finished(enriched: Store) -> set[date]:
    prefix = f"{layout.COMPACT_ALL_PREFIX}{schema_fingerprint()}/"
    days = set()
    for item in enriched.list(prefix):
        try:
            days.add(date.fromisoformat(item.key[len(prefix) :]))
        except ValueError:
            log.warning("ignored malformed compact-all marker key=%r", item.key)
    return days


def _clear_markers(enriched: Store) -> None:
    keys = [item.key for item in enriched.list(layout.COMPACT_ALL_PREFIX)]
    if keys:
        enriched.delete(keys)
