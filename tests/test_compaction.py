"""Compaction: one exact, typed, idempotent Parquet file per day."""

from __future__ import annotations

import gc
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from chalicelib import jobs, layout
from chalicelib.compaction import Compactor, DayChanged, DayLocked, dirty_days
from chalicelib.config import Settings
from chalicelib.errors import ObjectNotFound
from chalicelib.ingest import Ingestor
from chalicelib.schema import SCHEMA
from chalicelib.storage import LocalStore, open_store
from tests.conftest import RAW_BUCKET

DAY = date(2024, 3, 10)
NOON = 1710082800  # 2024-03-10 12:00 in São Paulo
CHAT = {"id": -1001234567890, "type": "supergroup", "title": "Grupo"}


def message(update_id: int, message_id: int, *, kind: str = "message", **fields):
    """A message update of DAY, as bytes; ``fields`` override the message's."""
    body = {
        "message_id": message_id,
        "from": {"id": 100 + message_id % 5, "is_bot": False, "first_name": "U"},
        "chat": CHAT,
        "date": NOON + message_id,
        **fields,
    }
    return json.dumps({"update_id": update_id, kind: body}).encode()


@pytest.fixture
def lake(folder_lake, monkeypatch) -> Settings:
    monkeypatch.setenv("TGLAKE_TIMEZONE", "America/Sao_Paulo")
    return Settings.from_env()


def ingest(settings: Settings, *bodies: bytes) -> list[str]:
    ingestor = Ingestor(settings, open_store(settings.raw))
    return [ingestor.ingest(body).key for body in bodies]


def compactor(settings: Settings, **stores) -> Compactor:
    raw = stores.get("raw") or open_store(settings.raw)
    enriched = stores.get("enriched") or open_store(settings.enriched)
    return Compactor(settings, raw, enriched)


def day_files(settings: Settings, day: date = DAY) -> list[str]:
    store = open_store(settings.enriched)
    return [item.key for item in store.list(layout.day_prefix(day))]


def read_day(settings: Settings, day: date = DAY):
    return pq.read_table(Path(settings.enriched) / layout.enriched_key(day))


def put_directly_into_moto(bucket: str, objects: dict[str, bytes]) -> None:
    """Arrange many objects fast: moto's backend, skipping 3 ms of HTTP per put."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    for key, body in objects.items():
        backend.put_object(bucket, key, body)


def test_a_day_past_a_thousand_objects_in_s3_is_read_whole(s3_lake, tmp_path):
    settings = replace(s3_lake, timezone="America/Sao_Paulo", read_threads=4)
    bodies = [message(n, n, text="t") for n in range(1001)]
    put_directly_into_moto(
        RAW_BUCKET,
        {f"lake/{layout.raw_key(DAY, '0', n, b)}": b for n, b in enumerate(bodies)},
    )

    result = compactor(settings).compact_day(DAY)

    assert (result.objects, result.rows, result.skipped) == (1001, 1001, 0)
    local = tmp_path / "day.parquet"
    open_store(settings.enriched).download_file(layout.enriched_key(DAY), local)
    assert sorted(pq.read_table(local)["message_id"].to_pylist()) == list(range(1001))


def test_text_media_stickers_and_service_messages_share_one_day(lake):
    ingest(
        lake,
        message(1, 1, text="olá"),
        message(2, 2, photo=[{"file_id": "p"}], caption="foto"),
        message(3, 3, sticker={"file_id": "s"}),
        message(4, 4, voice={"file_id": "v"}),
        message(5, 5, new_chat_members=[{"id": 9}]),
    )

    result = compactor(lake).compact_day(DAY)

    table = read_day(lake).to_pydict()
    assert result.rows == 5
    assert table["content_type"] == ["text", "photo", "sticker", "voice", "service"]
    assert table["text"] == ["olá", None, None, None, None]
    assert table["caption"] == [None, "foto", None, None, None]


def test_an_empty_day_writes_nothing_and_says_so(lake, caplog):
    caplog.set_level(logging.INFO, logger="chalicelib")

    result = compactor(lake).compact_day(DAY)

    assert (result.objects, result.rows, result.key) == (0, 0, None)
    assert day_files(lake) == []
    assert f"compacted day={DAY} empty, nothing written" in caplog.text


def test_a_corrupt_object_is_skipped_counted_and_logged_with_its_key(lake, caplog):
    caplog.set_level(logging.WARNING, logger="chalicelib")
    raw = open_store(lake.raw)
    broken = [
        f"{layout.day_prefix(DAY)}0-1-{name}.json" for name in ("aaaa", "bbbb", "cccc")
    ]
    raw.put(broken[0], b"{truncated")
    raw.put(broken[1], b"[1, 2]")
    raw.put(broken[2], b'{"no": "update_id"}')
    ingest(lake, message(1, 1, text="ok"))

    result = compactor(lake).compact_day(DAY)

    assert (result.objects, result.rows, result.skipped) == (4, 1, 3)
    for key in broken:
        assert f"key={key!r}" in caplog.text
    assert read_day(lake)["text"].to_pylist() == ["ok"]


def test_a_day_of_which_no_object_can_be_read_keeps_its_file(lake, caplog):
    keys = ingest(lake, message(1, 1, text="a"), message(2, 2, text="b"))
    compactor(lake).compact_day(DAY)
    for key in keys:
        (Path(lake.raw) / key).write_bytes(b'{"update_id": 1, "mess')

    result = compactor(lake).compact_day(DAY)

    assert (result.objects, result.rows, result.skipped) == (2, 0, 2)
    assert read_day(lake)["text"].to_pylist() == ["a", "b"]
    assert f"kept the enriched file day={DAY} reason=unreadable" in caplog.text


def test_a_message_without_a_usable_id_is_skipped_and_logged(lake, caplog):
    raw = open_store(lake.raw)
    unkeyed = f"{layout.day_prefix(DAY)}0-5-abcd.json"
    body = json.loads(message(5, 5, text="the id is a string"))
    body["message"]["message_id"] = "5"
    raw.put(unkeyed, json.dumps(body).encode())
    ingest(lake, message(6, 6, text="ok"))

    result = compactor(lake).compact_day(DAY)

    assert (result.rows, result.skipped, result.other) == (1, 1, 0)
    assert f"key={unkeyed!r} reason=unkeyed_message" in caplog.text
    assert "the id is a string" not in caplog.text


def test_a_key_with_a_line_break_cannot_forge_a_log_line(lake, caplog):
    raw = open_store(lake.raw)
    raw.put(f"{layout.day_prefix(DAY)}x\nINFO forged.json", b"not json")

    compactor(lake).compact_day(DAY)

    assert not [line for line in caplog.text.splitlines() if line.startswith("INFO f")]
    assert "\\nINFO forged.json" in caplog.text


def test_only_objects_right_in_the_days_folder_are_read(lake):
    ingest(lake, message(1, 1, text="this day"))
    other = date(2024, 3, 9)
    other_folder = Path(lake.raw) / layout.day_prefix(other)
    other_folder.mkdir(parents=True)
    (other_folder / "0-2-ab.json").write_bytes(message(2, 2, text="the day before"))
    day_folder = Path(lake.raw) / layout.day_prefix(DAY)
    (day_folder / "nested").mkdir()
    (day_folder / "nested" / "0-3-ab.json").write_bytes(message(3, 3, text="nested"))
    (day_folder / "previous").symlink_to(other_folder, target_is_directory=True)

    result = compactor(lake).compact_day(DAY)

    assert (result.objects, result.rows) == (1, 1)
    assert read_day(lake)["text"].to_pylist() == ["this day"]


def test_a_rerun_removes_only_parquet_files_from_the_days_folder(lake):
    ingest(lake, message(1, 1, text="a"))
    enriched = open_store(lake.enriched)
    prefix = layout.day_prefix(DAY)
    enriched.put(f"{prefix}20240311093000.parquet", b"an older design's file")
    enriched.put(f"{prefix}notes.json", b"not ours to remove")

    compactor(lake).compact_day(DAY)

    assert day_files(lake) == [layout.enriched_key(DAY), f"{prefix}notes.json"]


def test_an_edit_replaces_the_text_and_sets_edit_date(lake):
    ingest(
        lake,
        message(20, 7, kind="edited_message", text="corrigido", edit_date=NOON + 600),
        message(10, 7, text="original"),
    )

    result = compactor(lake).compact_day(DAY)

    rows = read_day(lake).to_pylist()
    assert (result.objects, result.rows, result.duplicates) == (2, 1, 1)
    assert [(r["text"], r["edit_date"], r["update_id"]) for r in rows] == [
        ("corrigido", NOON + 600, 20)
    ]


def test_a_redelivered_update_counts_once(lake):
    body = message(30, 8, text="duas vezes")
    spaced = json.dumps(json.loads(body), indent=1).encode()
    keys = ingest(lake, body, body, spaced)

    result = compactor(lake).compact_day(DAY)

    assert len(set(keys)) == 2
    assert (result.objects, result.rows) == (2, 1)
    assert read_day(lake)["message_id"].to_pylist() == [8]


def test_a_rerun_leaves_one_file_with_identical_rows(lake):
    ingest(lake, *(message(n, n, text=f"m{n}") for n in range(40)))
    worker = compactor(lake)

    first = worker.compact_day(DAY)
    first_rows = read_day(lake).to_pylist()
    second = worker.compact_day(DAY)

    assert day_files(lake) == [layout.enriched_key(DAY)]
    assert read_day(lake).to_pylist() == first_rows
    assert (first.rows, second.rows) == (40, 40)


def test_a_day_spilled_to_disk_gives_the_file_of_a_day_kept_in_memory(
    lake, monkeypatch
):
    from chalicelib import compaction

    bodies = [message(n, n % 60, text=f"m{n}") for n in range(200)]
    bodies += [
        message(1000 + n, n, kind="edited_message", text="e", edit_date=NOON + 900 + n)
        for n in range(0, 60, 7)
    ]
    ingest(lake, *reversed(bodies))
    in_memory = compactor(lake).compact_day(DAY)
    kept = pq.ParquetFile(Path(lake.enriched) / layout.enriched_key(DAY))
    # Spill every 7 rows and write row groups of 25: the other path, in pieces.
    monkeypatch.setattr(compaction, "SPILL_ROWS", 7)
    monkeypatch.setattr(compaction, "ROW_GROUP", 25)

    spilled = compactor(lake).compact_day(DAY)

    written = pq.ParquetFile(Path(lake.enriched) / layout.enriched_key(DAY))
    assert (kept.metadata.num_row_groups, written.metadata.num_row_groups) == (1, 3)
    assert written.read().equals(kept.read())
    assert (spilled.rows, spilled.duplicates) == (in_memory.rows, 149)
    assert in_memory.rows == 60


def test_bodies_only_pythons_json_reads_are_compacted_like_the_rest(lake):
    raw = open_store(lake.raw)
    prefix = layout.day_prefix(DAY)
    plain = json.loads(message(1, 1, text="plain"))
    # A byte order mark, an escaped lone surrogate and a NaN: orjson refuses all
    # three, and compaction reads them with json as before.
    raw.put(f"{prefix}0-1-a.json", b"\xef\xbb\xbf" + json.dumps(plain).encode())
    surrogate = json.loads(message(2, 2, text="x"))
    raw.put(
        f"{prefix}0-2-b.json",
        json.dumps(surrogate).replace('"x"', '"\\ud800"').encode(),
    )
    raw.put(f"{prefix}0-3-c.json", message(3, 3, text="n", caption=float("nan")))

    result = compactor(lake).compact_day(DAY)

    rows = read_day(lake).to_pylist()
    assert (result.rows, result.skipped) == (3, 0)
    assert [r["text"] for r in rows] == ["plain", "?", "n"]
    assert rows[2]["caption"] is None


def test_the_file_has_the_declared_schema_with_millisecond_utc_timestamps(lake):
    ingest(lake, message(1, 1, text="a"), message(2, 2, sticker={}))

    compactor(lake).compact_day(DAY)

    path = Path(lake.enriched) / layout.enriched_key(DAY)
    assert pq.read_table(path).schema.remove_metadata() == SCHEMA
    parquet = pq.ParquetFile(path)
    sent_at = parquet.schema.column(SCHEMA.get_field_index("sent_at"))
    assert sent_at.physical_type == "INT64"
    timestamp = json.loads(sent_at.logical_type.to_json())
    assert (timestamp["isAdjustedToUTC"], timestamp["timeUnit"]) == (
        True,
        "milliseconds",
    )
    assert parquet.metadata.row_group(0).column(0).compression == "ZSTD"
    for name in ("message_id", "user_id", "chat_id", "date", "update_id"):
        assert parquet.schema_arrow.field(name).type == SCHEMA.field(name).type


def test_a_day_of_updates_without_messages_loses_its_stale_file(lake):
    keys = ingest(lake, message(1, 1, text="apagada"))
    worker = compactor(lake)
    worker.compact_day(DAY)
    open_store(lake.raw).delete(keys)
    reaction = {
        "update_id": 2,
        "message_reaction": {"chat": CHAT, "message_id": 1, "date": NOON},
    }
    ingest(lake, json.dumps(reaction).encode())

    result = worker.compact_day(DAY)

    assert (result.objects, result.rows, result.other) == (1, 0, 1)
    assert day_files(lake) == []


class VanishingStore(LocalStore):
    """A raw folder where one object is erased between listing and reading."""

    def __init__(self, root: Path, gone: str) -> None:
        super().__init__(root)
        self.gone = gone

    def get(self, key: str) -> bytes:
        if key == self.gone:
            raise ObjectNotFound("erased", location=self.location, key=key)
        return super().get(key)


def test_a_day_whose_objects_vanish_while_read_keeps_its_file(lake):
    keys = ingest(lake, message(1, 1, text="a"), message(2, 2, text="b"))
    compactor(lake).compact_day(DAY)
    before = day_files(lake)
    raw = VanishingStore(Path(lake.raw), gone=keys[0])

    with pytest.raises(DayChanged, match=r"1 raw objects of .* vanished"):
        compactor(lake, raw=raw).compact_day(DAY)

    assert day_files(lake) == before
    assert len(read_day(lake)) == 2


class CollectorWatchingStore(LocalStore):
    """A raw folder that notes whether the cyclic garbage collector runs at each
    read; ``parallel_reads`` stands for S3."""

    def __init__(self, root: Path, *, parallel_reads: bool) -> None:
        super().__init__(root)
        self.parallel_reads = parallel_reads
        self.collector_on: list[bool] = []

    def get(self, key: str) -> bytes:
        self.collector_on.append(gc.isenabled())
        return super().get(key)


@pytest.mark.parametrize(("parallel_reads", "running"), [(False, False), (True, True)])
def test_only_a_day_read_from_a_folder_pauses_the_garbage_collector(
    lake, parallel_reads, running
):
    # boto3 leaves reference cycles behind each request: reading S3 with the
    # collector paused would hold them all until the day is done.
    ingest(lake, message(1, 1, text="a"), message(2, 2, text="b"))
    raw = CollectorWatchingStore(Path(lake.raw), parallel_reads=parallel_reads)

    compactor(lake, raw=raw).compact_day(DAY)

    assert raw.collector_on == [running, running]
    assert gc.isenabled()


def test_a_failed_compaction_leaves_the_garbage_collector_running(lake):
    keys = ingest(lake, message(1, 1, text="a"))
    raw = VanishingStore(Path(lake.raw), gone=keys[0])

    with pytest.raises(DayChanged):
        compactor(lake, raw=raw).compact_day(DAY)

    assert gc.isenabled()


class CrashingStore(LocalStore):
    """An enriched folder whose run dies at a chosen step (a Lambda timeout)."""

    def __init__(self, root: Path, crash_on: str) -> None:
        super().__init__(root)
        self.crash_on = crash_on

    def upload_file(self, key: str, path: Path) -> None:
        if self.crash_on == "upload":
            raise SystemExit("killed during upload")
        super().upload_file(key, path)

    def delete(self, keys) -> None:
        keys = list(keys)
        if self.crash_on == "cleanup" and any(k.startswith("telegram/") for k in keys):
            raise SystemExit("killed before removing stale files")
        super().delete(keys)


def test_a_crash_after_the_upload_never_leaves_a_day_without_its_file(lake):
    ingest(lake, message(1, 1, text="a"))
    compactor(lake).compact_day(DAY)
    old_design = f"{layout.day_prefix(DAY)}part-20240311.parquet"
    open_store(lake.enriched).put(old_design, b"stale")
    ingest(lake, message(2, 2, text="b"))
    crashing = CrashingStore(Path(lake.enriched), crash_on="cleanup")

    with pytest.raises(SystemExit):
        compactor(lake, enriched=crashing).compact_day(DAY)
    after_crash = read_day(lake)["message_id"].to_pylist()
    open_store(lake.enriched).delete([layout.lock_key(DAY)])
    compactor(lake).compact_day(DAY)

    assert after_crash == [1, 2]
    assert day_files(lake) == [layout.enriched_key(DAY)]


def test_a_crash_during_the_upload_keeps_the_previous_file(lake):
    ingest(lake, message(1, 1, text="a"))
    compactor(lake).compact_day(DAY)
    ingest(lake, message(2, 2, text="b"))
    crashing = CrashingStore(Path(lake.enriched), crash_on="upload")

    with pytest.raises(SystemExit):
        compactor(lake, enriched=crashing).compact_day(DAY)

    assert day_files(lake) == [layout.enriched_key(DAY)]
    assert read_day(lake)["message_id"].to_pylist() == [1]


class SlowCompactor(Compactor):
    """A compactor that holds its lease until told to finish."""

    def __init__(self, *args, started: threading.Event, finish: threading.Event):
        super().__init__(*args)
        self.started, self.finish = started, finish

    def _compact(self, day, progress):
        self.started.set()
        self.finish.wait(10)
        return super()._compact(day, progress)


def test_two_compactions_of_one_day_never_run_at_once(lake):
    ingest(lake, message(1, 1, text="a"))
    started, finish = threading.Event(), threading.Event()
    slow = SlowCompactor(
        lake,
        open_store(lake.raw),
        open_store(lake.enriched),
        started=started,
        finish=finish,
    )
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(slow.compact_day, DAY)
        started.wait(10)
        with pytest.raises(DayLocked):
            compactor(lake).compact_day(DAY)
        deferred = jobs.compact_or_defer(compactor(lake), DAY)
        finish.set()
        finished = running.result(10)

    assert (deferred.rows, finished.rows) == (0, 1)
    assert dirty_days(open_store(lake.enriched)) == [DAY]
    assert compactor(lake).compact_day(DAY).rows == 1


def test_an_expired_lease_is_taken_over_by_exactly_one_run(lake):
    ingest(lake, message(1, 1, text="a"))
    enriched = open_store(lake.enriched)
    dead = {"owner": "deadbeef", "expires": time.time() - 1}
    enriched.put(layout.lock_key(DAY), json.dumps(dead).encode())
    enriched.put(layout.takeover_key(DAY, "deadbeef"), b'{"expires": 9e99}')

    with pytest.raises(DayLocked, match="taking over"):
        compactor(lake).compact_day(DAY)
    enriched.delete([layout.takeover_key(DAY, "deadbeef")])
    result = compactor(lake).compact_day(DAY)

    assert result.rows == 1
    assert list(enriched.list(layout.LOCKS_PREFIX)) == []


def test_a_live_lease_blocks_and_its_release_frees_the_day(lake):
    ingest(lake, message(1, 1, text="a"))
    worker = compactor(lake)

    with worker.lease(DAY), pytest.raises(DayLocked):
        worker.compact_day(DAY)

    assert worker.compact_day(DAY).rows == 1
