"""The scheduled and S3-triggered work: compact yesterday, note late data, compact
what is dirty.

Late data: the S3 hook runs once per new raw object. Recompacting a day per object
would make a bulk load of past days cost one full compaction per object, so the hook
only writes the day's dirty marker (one key per day, so writing it again is free),
and the hourly schedule compacts each dirty day once. The marker is removed before
the day's objects are listed: an object that lands during the compaction marks the
day again, and the next hour picks it up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime

from chalicelib import layout, runtime
from chalicelib.compaction import (
    Compactor,
    DayLocked,
    DayResult,
    dirty_days,
    is_late,
    mark_dirty,
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
    """The daily job: compact yesterday in the lake's time zone."""
    return compact_or_defer(compactor(settings), yesterday(settings, now))


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
    """The S3 hook: mark a late object's day dirty; True when it did."""
    day = layout.day_of_key(key)
    if day is None or not key.endswith(layout.RAW_SUFFIX):
        return False
    if not is_late(day, settings, now):
        return False
    mark_dirty(runtime.store(settings.enriched), day)
    log.info("marked dirty day=%s", day)
    return True


def compact_dirty(settings: Settings) -> list[DayResult]:
    """The hourly job: compact every day marked dirty, once each."""
    worker = compactor(settings)
    results, failed = [], []
    for day in dirty_days(worker.enriched):
        worker.enriched.delete([layout.dirty_key(day)])
        try:
            results.append(compact_or_defer(worker, day))
        except TglakeError as error:
            mark_dirty(worker.enriched, day)
            log.error("compaction failed day=%s error=%s", day, error)
            failed.append(day)
    if failed:
        raise CompactionFailed(f"{len(failed)} dirty days failed: {failed}")
    return results
