"""The scheduled and S3-triggered work: compact yesterday, note late data, compact
what is dirty.

Late data: the S3 hook runs once per new raw object. Recompacting a day per object
would make a bulk load of past days cost one full compaction per object, so the hook
only writes a dirty marker named after the object (a repeated S3 event rewrites the
same marker), and the hourly schedule compacts each marked day once. It deletes
only the markers it listed before compacting: an object that lands meanwhile keeps
its marker for the next hour, and a crash or timeout leaves every marker in place.
A day held by another run keeps its markers too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime

from chalicelib import layout, runtime
from chalicelib.compaction import (
    Compactor,
    DayExpired,
    DayLocked,
    DayResult,
    dirty_markers,
    is_late,
    mark_dirty,
    raw_is_expired,
    yesterday,
)
from chalicelib.config import Settings
from chalicelib.errors import TglakeError

log = logging.getLogger(__name__)


class CompactionFailed(TglakeError):
    """One or more days could not be compacted; they stay marked dirty."""


def compactor(settings: Settings) -> Compactor:
    """A compactor over the configured stores."""
    return Compactor(
        settings, runtime.store(settings.raw), runtime.store(settings.enriched)
    )


def compact_yesterday(settings: Settings, now: datetime | None = None) -> DayResult:
    """The daily job: compact yesterday in the lake's time zone.

    When it fails, the day is marked dirty so the hourly job tries again.
    """
    worker = compactor(settings)
    day = yesterday(settings, now)
    try:
        return compact_or_defer(worker, day)
    except TglakeError:
        mark_dirty(worker.enriched, day)
        raise


def scheduled_time(value: str) -> datetime | None:
    """The UTC time an EventBridge event names (``2024-03-11T03:15:00Z``), if valid."""
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def compact_or_defer(
    worker: Compactor,
    day: date,
    *,
    progress: Callable[[int], None] | None = None,
) -> DayResult:
    """Compact a day; when another run holds it, mark it dirty for the next hour."""
    try:
        return worker.compact_day(day, progress=progress)
    except DayLocked:
        mark_dirty(worker.enriched, day)
        log.info("deferred day=%s reason=locked", day)
        return DayResult(day)


def note_raw_object(settings: Settings, key: str, now: datetime | None = None) -> bool:
    """The S3 hook: mark a late object's day dirty; True when it did.

    ``key`` is the bucket key as the S3 event gives it (already URL-decoded by
    Chalice), so it may start with the raw store's prefix.
    """
    day = layout.day_of_key(key)
    if day is None or not key.endswith(layout.RAW_SUFFIX):
        return False
    if not is_late(day, settings, now):
        return False
    if raw_is_expired(day, settings, now):
        log.warning("late object past the raw retention day=%s key=%r", day, key)
        return False
    mark_dirty(runtime.store(settings.enriched), day, layout.digest(key.encode()))
    log.info("marked dirty day=%s", day)
    return True


def compact_dirty(
    settings: Settings, *, worker: Compactor | None = None
) -> list[DayResult]:
    """The hourly job: compact every day marked dirty, once each."""
    worker = worker or compactor(settings)
    results, failed = [], []
    for day, markers in dirty_markers(worker.enriched).items():
        try:
            result = worker.compact_day(day)
        except DayExpired as error:
            log.warning("dropped dirty markers day=%s reason=%s", day, error)
            worker.enriched.delete(markers)
            continue
        except DayLocked:
            log.info("deferred day=%s reason=locked markers=%d", day, len(markers))
            continue
        except TglakeError as error:
            log.error("compaction failed day=%s error=%s", day, error)
            failed.append(day)
            continue
        worker.enriched.delete(markers)
        results.append(result)
    if failed:
        days = ", ".join(day.isoformat() for day in failed)
        raise CompactionFailed(f"{len(failed)} dirty days failed: {days}")
    return results
