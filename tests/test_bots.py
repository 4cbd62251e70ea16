"""Two bots writing into one raw store: their updates stay apart."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
from click.testing import CliRunner

from chalicelib import jobs, layout, runtime
from chalicelib.cli import main
from chalicelib.config import Settings
from chalicelib.ingest import Ingestor

ALICE, BRUNO = 31337, 42424
UPDATE_ID = 777


def update(user: int, chat: int, stamp: int, text: str) -> bytes:
    body = {
        "update_id": UPDATE_ID,
        "message": {
            "message_id": 1,
            "from": {"id": user, "is_bot": False, "first_name": f"User{user}"},
            "chat": {"id": chat, "type": "group", "title": f"Group {chat}"},
            "date": stamp,
            "text": text,
        },
    }
    return json.dumps(body).encode()


def store_as(settings: Settings, bot_id: str, body: bytes) -> str:
    bot = replace(settings, bot_id=bot_id)
    return Ingestor(bot, runtime.store(settings.raw)).ingest(body).key


def days_ago(days: int) -> int:
    return int((datetime.now(UTC) - timedelta(days=days)).timestamp())


def test_equal_update_ids_from_two_bots_are_two_objects(folder_lake):
    stamp = days_ago(1)
    body = update(ALICE, -1, stamp, "same bytes")

    keys = [store_as(folder_lake, bot, body) for bot in ("111", "222")]
    other = store_as(folder_lake, "222", update(BRUNO, -2, stamp, "other"))

    raw = runtime.store(folder_lake.raw)
    assert len({*keys, other}) == 3
    assert [layout.parse_raw_key(key).bot_id for key in keys] == ["111", "222"]
    assert {layout.parse_raw_key(key).update_id for key in keys} == {UPDATE_ID}
    assert raw.get(keys[0]) == raw.get(keys[1]) == body


def test_compaction_keeps_both_bots_messages(folder_lake):
    stamp = days_ago(1)
    store_as(folder_lake, "111", update(ALICE, -1, stamp, "from one"))
    key = store_as(folder_lake, "222", update(BRUNO, -2, stamp, "from two"))

    result = jobs.compactor(folder_lake).compact_day(layout.day_of_key(key))

    table = pq.read_table(
        pa.BufferReader(runtime.store(folder_lake.enriched).get(result.key))
    )
    assert sorted(table["text"].to_pylist()) == ["from one", "from two"]


def test_forget_erases_a_person_and_not_the_other_bots_equal_update_id(folder_lake):
    stamp = days_ago(1)
    alice = store_as(folder_lake, "111", update(ALICE, -1, stamp, "alice"))
    alice_too = store_as(folder_lake, "222", update(ALICE, -1, stamp + 1, "again"))
    bruno = store_as(folder_lake, "222", update(BRUNO, -2, stamp, "bruno"))
    raw = runtime.store(folder_lake.raw)

    result = CliRunner().invoke(main, ["forget", "--user", str(ALICE), "--yes"])

    assert result.exit_code == 0, result.output
    assert [raw.exists(key) for key in (alice, alice_too, bruno)] == [
        False,
        False,
        True,
    ]


def test_purge_of_one_bot_leaves_the_other_bots_objects(folder_lake):
    old, recent = days_ago(30), days_ago(1)
    keys = {
        (bot, age): store_as(folder_lake, bot, update(ALICE, -1, stamp, bot))
        for bot in ("111", "222")
        for age, stamp in (("old", old), ("recent", recent))
    }
    raw = runtime.store(folder_lake.raw)

    result = CliRunner().invoke(
        main, ["purge", "--older-than", "10", "--bot", "111", "--yes"]
    )

    assert result.exit_code == 0, result.output
    kept = {name for name, key in keys.items() if raw.exists(key)}
    assert kept == {("111", "recent"), ("222", "old"), ("222", "recent")}


def test_the_bot_id_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TGLAKE_RAW", str(tmp_path))
    monkeypatch.setenv("TGLAKE_BOT_ID", "222")
    settings = Settings.from_env()

    key = (
        Ingestor(settings, runtime.store(settings.raw))
        .ingest(update(ALICE, -1, days_ago(1), "x"))
        .key
    )

    assert key.rpartition("/")[2].startswith(f"222-{UPDATE_ID}-")
