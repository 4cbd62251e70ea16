"""The daily and hourly schedules and the S3 hook that keeps compacted days correct."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote_plus

import pyarrow.parquet as pq
import pytest

from chalicelib import jobs, layout
from chalicelib.compaction import Compactor, DayExpired, dirty_days
from chalicelib.config import Settings
from chalicelib.errors import StorageError
from chalicelib.ingest import Ingestor
from chalicelib.storage import open_store
from tests.conftest import ENRICHED_BUCKET, RAW_BUCKET

ZONE = "America/Sao_Paulo"
DAY = date(2024, 3, 10)
NOON = 1710082800  # 2024-03-10 12:00 in São Paulo
NOW = datetime(2024, 3, 20, 12, 0, tzinfo=UTC)


def message(update_id: int, *, day_offset: int = 0, text: str = "oi") -> bytes:
    body = {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "chat": {"id": -100777, "type": "supergroup"},
            "date": NOON + day_offset * 86400 + update_id % 1000,
            "text": text,
        },
    }
    return json.dumps(body).encode()


@pytest.fixture
def lake(folder_lake, monkeypatch) -> Settings:
    monkeypatch.setenv("TGLAKE_TIMEZONE", ZONE)
    return Settings.from_env()


def ingest(settings: Settings, *bodies: bytes) -> list[str]:
    ingestor = Ingestor(settings, open_store(settings.raw))
    return [ingestor.ingest(body).key for body in bodies]


def rows(settings: Settings, day: date = DAY) -> list[int]:
    path = Path(settings.enriched) / layout.enriched_key(day)
    return sorted(pq.read_table(path)["message_id"].to_pylist())


class CountingCompactor(Compactor):
    """A compactor that counts the days it compacts."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.compacted: list[date] = []

    def compact_day(self, day, *, progress=None):
        self.compacted.append(day)
        return super().compact_day(day, progress=progress)


def counting(settings: Settings) -> CountingCompactor:
    return CountingCompactor(
        settings, open_store(settings.raw), open_store(settings.enriched)
    )


def test_a_late_update_marks_its_day_dirty_and_the_hourly_job_recompacts_it(lake):
    ingest(lake, message(1))
    jobs.compactor(lake).compact_day(DAY)
    (late_key,) = ingest(lake, message(2))

    marked = jobs.note_raw_object(lake, late_key, NOW)
    results = jobs.compact_dirty(lake)

    assert marked
    assert [result.day for result in results] == [DAY]
    assert rows(lake) == [1, 2]
    assert dirty_days(open_store(lake.enriched)) == []


@pytest.mark.parametrize(
    ("key", "marked"),
    [
        ("telegram/context_date=2024-03-19/0-1-ab.json", True),
        ("lake/telegram/context_date=2024-03-10/0-1-ab.json", True),
        ("telegram/context_date=2024-03-20/0-1-ab.json", False),
        ("quarantine/context_date=2024-03-10/0-ab.body", False),
        ("telegram/no-day/0-1-ab.json", False),
    ],
)
def test_only_raw_objects_of_past_days_are_late(lake, key, marked):
    assert jobs.note_raw_object(lake, key, NOW) is marked
    assert bool(dirty_days(open_store(lake.enriched))) is marked


def test_a_bulk_load_over_five_past_days_recompacts_each_day_once(lake):
    bodies = [message(n, day_offset=n % 5) for n in range(500)]
    keys = ingest(lake, *bodies)
    for key in keys:
        jobs.note_raw_object(lake, key, NOW)
    worker = counting(lake)

    results = jobs.compact_dirty(lake, worker=worker)
    again = jobs.compact_dirty(lake, worker=worker)

    days = [DAY + timedelta(days=n) for n in range(5)]
    assert worker.compacted == days
    assert [result.rows for result in results] == [100] * 5
    assert again == []


class HookDuringCompaction(Compactor):
    """A compactor during whose run one more late update arrives."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(
            settings, open_store(settings.raw), open_store(settings.enriched)
        )
        self.arrived = False

    def _compact(self, day, progress):
        result = super()._compact(day, progress)
        if not self.arrived:
            self.arrived = True
            (key,) = ingest(self.settings, message(3))
            jobs.note_raw_object(self.settings, key, NOW)
        return result


def test_an_update_landing_during_a_recompaction_keeps_its_day_dirty(lake):
    (key,) = ingest(lake, message(1))
    jobs.note_raw_object(lake, key, NOW)

    jobs.compact_dirty(lake, worker=HookDuringCompaction(lake))
    still_dirty = dirty_days(open_store(lake.enriched))
    jobs.compact_dirty(lake)

    assert still_dirty == [DAY]
    assert rows(lake) == [1, 3]


class TimedOutCompactor(Compactor):
    """A compactor whose Lambda is killed mid-run."""

    def _compact(self, day, progress):
        raise SystemExit("Task timed out after 900.00 seconds")


def test_a_run_killed_mid_compaction_leaves_the_day_dirty(lake):
    (key,) = ingest(lake, message(1))
    jobs.note_raw_object(lake, key, NOW)
    killed = TimedOutCompactor(lake, open_store(lake.raw), open_store(lake.enriched))

    with pytest.raises(SystemExit):
        jobs.compact_dirty(lake, worker=killed)
    open_store(lake.enriched).delete([layout.lock_key(DAY)])
    results = jobs.compact_dirty(lake)

    assert [result.day for result in results] == [DAY]
    assert rows(lake) == [1]


def test_a_day_held_by_another_run_keeps_its_markers(lake):
    (key,) = ingest(lake, message(1))
    jobs.note_raw_object(lake, key, NOW)
    worker = jobs.compactor(lake)

    with worker.lease(DAY):
        held = jobs.compact_dirty(lake)

    assert held == []
    assert dirty_days(open_store(lake.enriched)) == [DAY]


def test_a_failed_daily_run_leaves_the_day_for_the_hourly_job(s3_lake):
    import boto3

    boto3.client("s3").delete_bucket(Bucket=RAW_BUCKET)

    with pytest.raises(StorageError, match="NoSuchBucket"):
        jobs.compact_yesterday(s3_lake, NOW)

    assert dirty_days(open_store(s3_lake.enriched)) == [NOW.date() - timedelta(1)]


def test_the_s3_hook_marks_a_late_day_and_the_hourly_schedule_compacts_it(
    client, s3_lake, monkeypatch
):
    monkeypatch.setenv("TGLAKE_TIMEZONE", ZONE)
    client.http.post("/webhook", body=message(5))
    (key,) = [item.key for item in open_store(s3_lake.raw).list("telegram/")]
    # S3 URL-encodes the key in its event; Chalice decodes it once.
    s3_event = client.events.generate_s3_event(
        RAW_BUCKET, quote_plus(f"lake/{key}", "/")
    )
    hourly = client.events.generate_cw_event(
        "aws.events", "Scheduled Event", {}, ["arn:aws:events:rule/compact_dirty"]
    )

    client.lambda_.invoke("note_late_data", s3_event)
    markers = dirty_days(open_store(s3_lake.enriched))
    answer = client.lambda_.invoke("compact_dirty", hourly)

    assert markers == [DAY]
    assert answer.payload == {"days": ["2024-03-10"]}
    import boto3

    listed = boto3.client("s3").list_objects_v2(Bucket=ENRICHED_BUCKET)["Contents"]
    assert [item["Key"] for item in listed] == [f"lake/{layout.enriched_key(DAY)}"]


def test_the_daily_schedule_compacts_yesterday_of_its_event_time(
    client, lake, monkeypatch, caplog
):
    monkeypatch.setenv("TGLAKE_TIMEZONE", ZONE)
    caplog.set_level(logging.INFO, logger="chalicelib")
    for n in range(3):
        client.http.post("/webhook", body=message(n))
    client.http.post("/webhook", body=message(9, day_offset=1))
    event = client.events.generate_cw_event(
        "aws.events", "Scheduled Event", {}, ["arn:aws:events:rule/compact_daily"]
    )
    event["time"] = "2024-03-11T03:15:00Z"

    answer = client.lambda_.invoke("compact_daily", event)

    assert answer.payload == {"day": "2024-03-10", "rows": 3}
    assert rows(lake) == [0, 1, 2]
    assert "compacted day=2024-03-10 objects=3 rows=3" in caplog.text


def test_a_day_past_the_raw_retention_is_never_rebuilt_from_what_is_left(lake):
    ingest(lake, message(1), message(2))
    jobs.compactor(lake).compact_day(DAY)
    keeping = replace(lake, raw_retention_days=30)
    (late_edit,) = ingest(lake, message(3))
    jobs.mark_dirty(open_store(lake.enriched), DAY)

    marked = jobs.note_raw_object(keeping, late_edit)
    results = jobs.compact_dirty(keeping)
    with pytest.raises(DayExpired, match="past the raw retention"):
        jobs.compactor(keeping).compact_day(DAY)

    assert (marked, results) == (False, [])
    assert rows(lake) == [1, 2]
    assert dirty_days(open_store(lake.enriched)) == []
