"""``compact_all``: every day rewritten to the current schema, resumably."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from chalicelib import layout, maintenance, runtime
from chalicelib.config import Settings
from chalicelib.ingest import Ingestor
from chalicelib.schema import SCHEMA

OLD_COLUMNS = ["message_id", "user_id", "chat_id", "text", "date"]


def stamp(day: date) -> int:
    return int(datetime.combine(day, datetime.min.time(), UTC).timestamp()) + 3600


def ingest_day(settings: Settings, day: date, count: int) -> list[str]:
    ingestor = Ingestor(settings, runtime.store(settings.raw))
    keys = []
    for n in range(count):
        update = {
            "update_id": stamp(day) + n,
            "message": {
                "message_id": n + 1,
                "from": {"id": 7, "is_bot": False, "first_name": "Ana"},
                "chat": {"id": -100, "type": "group", "title": "G"},
                "date": stamp(day) + n,
                "text": f"message {n}",
            },
        }
        keys.append(ingestor.ingest(json.dumps(update).encode()).key)
    return keys


def write_old_day(settings: Settings, day: date, rows: int) -> pa.Table:
    """A day compacted long ago with fewer columns, whose raw objects are gone."""
    table = pa.table(
        {
            "message_id": pa.array(range(1, rows + 1), pa.int64()),
            "user_id": pa.array([7] * rows, pa.int64()),
            "chat_id": pa.array([-100] * rows, pa.int64()),
            "text": pa.array([f"old {n}" for n in range(rows)], pa.string()),
            "date": pa.array([stamp(day)] * rows, pa.int64()),
        }
    )
    path = Path(settings.enriched) / layout.enriched_key(day)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return table


def read_day(settings: Settings, day: date) -> pa.Table:
    return pq.read_table(Path(settings.enriched) / layout.enriched_key(day))


def test_a_day_written_with_an_older_schema_gets_the_full_schema_and_its_rows(
    folder_lake,
):
    old_day, new_day = date(2024, 1, 5), date(2024, 1, 6)
    before = write_old_day(folder_lake, old_day, rows=3)
    ingest_day(folder_lake, new_day, count=2)

    results = maintenance.compact_all(folder_lake)

    assert [(r.day, r.rows, r.objects) for r in results] == [
        (old_day, 3, 0),
        (new_day, 2, 2),
    ]
    after = read_day(folder_lake, old_day)
    assert after.schema.remove_metadata() == SCHEMA
    assert after.select(OLD_COLUMNS).to_pylist() == before.to_pylist()
    assert after["update_kind"].null_count == 3
    assert read_day(folder_lake, new_day).schema.remove_metadata() == SCHEMA


def test_an_interrupted_run_resumes_and_does_each_day_once(folder_lake):
    days = [date(2024, 2, 1), date(2024, 2, 2), date(2024, 2, 3)]
    write_old_day(folder_lake, days[0], rows=1)
    for day in days[1:]:
        ingest_day(folder_lake, day, count=1)
    done: list[date] = []

    def interrupt(result):
        done.append(result.day)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        maintenance.compact_all(folder_lake, progress=interrupt)
    maintenance.compact_all(
        folder_lake, progress=lambda result: done.append(result.day)
    )

    assert done == days
    markers = list(runtime.store(folder_lake.enriched).list(layout.COMPACT_ALL_PREFIX))
    assert markers == []


def test_a_run_without_resume_starts_over(folder_lake):
    days = [date(2024, 2, 1), date(2024, 2, 2)]
    for day in days:
        write_old_day(folder_lake, day, rows=1)
    with pytest.raises(KeyboardInterrupt):
        maintenance.compact_all(folder_lake, progress=_raise)

    results = maintenance.compact_all(folder_lake, resume=False)

    assert [result.day for result in results] == days


def test_markers_of_another_schema_do_not_skip_a_day(folder_lake):
    day = date(2024, 2, 1)
    write_old_day(folder_lake, day, rows=2)
    store = runtime.store(folder_lake.enriched)
    store.put(layout.compact_all_key("0123456789abcdef", day), b"{}")

    results = maintenance.compact_all(folder_lake)

    assert [result.day for result in results] == [day]


def test_a_day_past_raw_retention_keeps_its_enriched_rows(folder_lake, monkeypatch):
    today = datetime.now(UTC).date()
    day = today - timedelta(days=20)
    write_old_day(folder_lake, day, rows=3)
    ingest_day(folder_lake, day, count=1)  # a late object the lifecycle rule left
    monkeypatch.setenv("TGLAKE_RAW_RETENTION_DAYS", "10")
    settings = Settings.from_env()

    results = maintenance.compact_all(settings)

    assert [(r.rows, r.objects) for r in results] == [(3, 0)]
    assert read_day(settings, day)["text"].to_pylist() == ["old 0", "old 1", "old 2"]


def test_a_day_past_enriched_retention_is_left_for_purge(folder_lake, monkeypatch):
    day = datetime.now(UTC).date() - timedelta(days=20)
    write_old_day(folder_lake, day, rows=1)
    monkeypatch.setenv("TGLAKE_ENRICHED_RETENTION_DAYS", "10")

    results = maintenance.compact_all(Settings.from_env())

    assert results == []
    assert read_day(folder_lake, day).column_names == OLD_COLUMNS


def test_days_that_cannot_be_rewritten_are_named_and_the_others_are_done(
    folder_lake, caplog
):
    uncastable, corrupt, fine = date(2024, 3, 1), date(2024, 3, 2), date(2024, 3, 3)
    path = Path(folder_lake.enriched) / layout.enriched_key(uncastable)
    path.parent.mkdir(parents=True)
    pq.write_table(pa.table({"user_id": pa.array(["Ana Souza"])}), path)
    path = Path(folder_lake.enriched) / layout.enriched_key(corrupt)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not parquet")
    ingest_day(folder_lake, fine, count=2)

    with pytest.raises(
        maintenance.MaintenanceIncomplete,
        match=r"2 days failed \(2024-03-01, 2024-03-02;",
    ):
        maintenance.compact_all(folder_lake)

    assert "column user_id of day 2024-03-01 is string" in caplog.text
    assert "cannot be read as Parquet" in caplog.text
    assert "Ana Souza" not in caplog.text
    assert read_day(folder_lake, fine).schema.remove_metadata() == SCHEMA
    assert path.read_bytes() == b"not parquet"


def test_compact_all_works_on_s3(s3_lake):
    fresh, old = date(2024, 4, 1), date(2024, 4, 2)
    ingest_day(s3_lake, fresh, count=3)
    store = runtime.store(s3_lake.enriched)
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({"message_id": pa.array([5], pa.int64())}), sink)
    store.put(layout.enriched_key(old), sink.getvalue().to_pybytes())

    results = maintenance.compact_all(s3_lake)

    assert [(r.day, r.rows) for r in results] == [(fresh, 3), (old, 1)]
    for day in (fresh, old):
        table = pq.read_table(pa.BufferReader(store.get(layout.enriched_key(day))))
        assert table.schema.remove_metadata() == SCHEMA


def _raise(result):
    raise KeyboardInterrupt
