"""``tglake forget`` and ``tglake purge``: erasure and retention on both storages."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from chalicelib import compaction, jobs, layout, privacy, runtime
from chalicelib.cli import main
from chalicelib.config import Settings
from chalicelib.ingest import Ingestor
from chalicelib.schema import SCHEMA
from tests.conftest import ENRICHED_BUCKET, RAW_BUCKET

TARGET = 424242
OTHER = 515151
GROUP = -1001234567890
SECOND_GROUP = -1009876543210
DAY_ONE = 1709546400  # 2024-03-04 10:00 UTC
DAY_TWO = DAY_ONE + 86400
TARGET_USER = {
    "id": TARGET,
    "is_bot": False,
    "first_name": "Zelda",
    "last_name": "Quintavalle",
    "username": "zquintavalle",
}
OTHER_USER = {"id": OTHER, "is_bot": False, "first_name": "Otto"}
GROUP_CHAT = {"id": GROUP, "type": "supergroup", "title": "Test Group"}
TARGET_STRINGS = ("424242", "Zelda", "Quintavalle", "zquintavalle", "target secret")


def message(update_id, message_id, sender, stamp, chat=GROUP_CHAT, **fields):
    body = {"message_id": message_id, "from": sender, "chat": chat, "date": stamp}
    return {"update_id": update_id, "message": body | fields}


def conversation() -> list[dict]:
    """Every way an update can be about the target or mention them."""
    theirs = {
        "message_id": 1,
        "from": TARGET_USER,
        "chat": GROUP_CHAT,
        "date": DAY_ONE,
        "text": "target secret one",
    }
    private = {"id": TARGET, "type": "private", "first_name": "Zelda"}
    return [
        {"update_id": 1, "message": theirs},
        {
            "update_id": 2,
            "edited_message": theirs
            | {"text": "target secret edited", "edit_date": DAY_ONE + 60},
        },
        message(
            3,
            2,
            OTHER_USER,
            DAY_ONE + 120,
            text="a reply",
            reply_to_message=theirs,
            quote={"text": "target secret", "position": 0},
        ),
        message(4, 8, OTHER_USER, DAY_ONE + 180, text="plain words"),
        message(
            5,
            1,
            OTHER_USER,
            DAY_ONE + 240,
            chat={"id": SECOND_GROUP, "type": "group", "title": "Second"},
            text="elsewhere",
        ),
        message(
            6,
            3,
            OTHER_USER,
            DAY_TWO,
            text="hello friend",
            entities=[
                {"type": "text_mention", "offset": 6, "length": 6, "user": TARGET_USER}
            ],
        ),
        message(
            7,
            4,
            OTHER_USER,
            DAY_TWO + 60,
            text="forwarded words",
            forward_origin={"type": "user", "sender_user": TARGET_USER, "date": 1},
            forward_from=TARGET_USER,
            forward_date=1,
        ),
        message(8, 5, TARGET_USER, DAY_TWO + 120, new_chat_members=[TARGET_USER]),
        message(9, 6, TARGET_USER, DAY_TWO + 180, left_chat_member=TARGET_USER),
        message(10, 9, OTHER_USER, DAY_TWO + 240, pinned_message=theirs),
        message(
            11,
            10,
            OTHER_USER,
            DAY_TWO + 300,
            contact={"phone_number": "+000", "first_name": "Zelda", "user_id": TARGET},
        ),
        message(12, 7, TARGET_USER, DAY_TWO + 360, chat=private, text="target secret"),
        {
            "update_id": 13,
            "message_reaction": {
                "chat": GROUP_CHAT,
                "message_id": 2,
                "user": TARGET_USER,
                "date": DAY_TWO + 420,
                "old_reaction": [],
                "new_reaction": [{"type": "emoji", "emoji": "👍"}],
            },
        },
        {
            "update_id": 14,
            "callback_query": {
                "id": "77",
                "from": TARGET_USER,
                "chat_instance": "1",
                "data": "x",
                "message": {
                    "message_id": 11,
                    "from": {"id": 999, "is_bot": True, "first_name": "Bot"},
                    "chat": GROUP_CHAT,
                    "date": DAY_TWO + 480,
                    "text": "pick one",
                },
            },
        },
        {
            "update_id": 15,
            "chat_member": {
                "chat": GROUP_CHAT,
                "from": OTHER_USER,
                "date": DAY_TWO + 540,
                "old_chat_member": {"user": TARGET_USER, "status": "member"},
                "new_chat_member": {"user": TARGET_USER, "status": "kicked"},
            },
        },
    ]


def fill(settings: Settings, updates: list[dict]) -> list[str]:
    """Ingest the updates and compact their days, as the deployed pipeline would."""
    ingestor = Ingestor(settings, runtime.store(settings.raw))
    keys = [ingestor.ingest(json.dumps(update).encode()).key for update in updates]
    worker = jobs.compactor(settings)
    for day in sorted({layout.day_of_key(key) for key in keys}):
        worker.compact_day(day)
    return keys


def enriched_rows(settings: Settings) -> list[dict]:
    store = runtime.store(settings.enriched)
    rows = []
    for item in store.list(layout.RAW_PREFIX):
        rows += pq.read_table(pa.BufferReader(store.get(item.key))).to_pylist()
    return rows


def leaks_in_table(data: bytes, strings: tuple[str, ...], number: int) -> list:
    found = []
    for row in pq.read_table(pa.BufferReader(data)).to_pylist():
        for column, value in row.items():
            if value == number or any(s in str(value) for s in strings):
                found.append((column, value))
    return found


def leaks(
    data: bytes, key: str, strings: tuple[str, ...] = TARGET_STRINGS, number=TARGET
):
    """Where any of ``strings`` (or ``number`` as a cell) survives in one object."""
    if key.endswith(".parquet"):
        return leaks_in_table(data, strings, number)
    text = data.decode("utf-8", "replace")
    return [s for s in strings if s in text]


def folder_leaks(settings: Settings, **what) -> dict[str, list]:
    found = {}
    for root in (Path(settings.raw), Path(settings.enriched)):
        for path in root.rglob("*"):
            if path.is_file() and (hits := leaks(path.read_bytes(), path.name, **what)):
                found[str(path)] = hits
    return found


def bucket_leaks(**what) -> dict[str, list]:
    """Every version of every object in both buckets, scanned."""
    s3 = boto3.client("s3")
    found = {}
    for bucket in (RAW_BUCKET, ENRICHED_BUCKET):
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            for item in page.get("Versions", []):
                reply = s3.get_object(
                    Bucket=bucket, Key=item["Key"], VersionId=item["VersionId"]
                )
                hits = leaks(reply["Body"].read(), item["Key"], **what)
                if hits:
                    found[f"{item['Key']}@{item['VersionId']}"] = hits
    return found


def enable_versioning() -> None:
    s3 = boto3.client("s3")
    for bucket in (RAW_BUCKET, ENRICHED_BUCKET):
        s3.put_bucket_versioning(
            Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
        )


def others_messages(settings: Settings) -> dict[tuple[int, int], dict]:
    return {(r["chat_id"], r["message_id"]): r for r in enriched_rows(settings)}


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_forget_user_leaves_no_trace_of_them_in_a_folder(folder_lake):
    fill(folder_lake, conversation())
    assert folder_leaks(folder_lake)

    result = CliRunner().invoke(main, ["forget", "--user", str(TARGET), "--yes"])

    assert result.exit_code == 0, result.output
    assert folder_leaks(folder_lake) == {}
    kept = others_messages(folder_lake)
    assert set(kept) == {(GROUP, 2), (GROUP, 8), (SECOND_GROUP, 1), (GROUP, 3)} | {
        (GROUP, 9),
        (GROUP, 10),
    }
    assert kept[(GROUP, 2)]["text"] == "a reply"
    assert kept[(GROUP, 2)]["reply_to_message_id"] == 1
    assert kept[(GROUP, 2)]["reply_to_user_id"] is None
    assert kept[(GROUP, 8)]["user_first_name"] == "Otto"
    assert "2024-03-04 raw_deleted=2 raw_redacted=1 rows_dropped=1" in result.stdout


def test_forget_user_erases_every_version_on_a_versioned_bucket(s3_lake):
    enable_versioning()
    keys = fill(s3_lake, conversation())
    fill(s3_lake, conversation())  # redelivery and recompaction: second versions
    runtime.store(s3_lake.raw).delete([keys[11]])  # only a delete marker is current
    assert bucket_leaks()

    result = CliRunner().invoke(main, ["forget", "--user", str(TARGET), "--yes"])

    assert result.exit_code == 0, result.output
    assert bucket_leaks() == {}
    assert len(others_messages(s3_lake)) == 6
    hidden = boto3.client("s3").list_object_versions(
        Bucket=RAW_BUCKET, Prefix=f"lake/{keys[11]}"
    )
    assert "Versions" not in hidden and "DeleteMarkers" not in hidden


def test_forget_rewrites_enriched_days_whose_raw_objects_have_expired(folder_lake):
    fill(folder_lake, conversation())
    shutil.rmtree(folder_lake.raw)

    result = CliRunner().invoke(main, ["forget", "--user", str(TARGET), "--yes"])

    assert result.exit_code == 0, result.output
    names = ("424242", "Zelda", "Quintavalle", "zquintavalle", "target secret")
    assert folder_leaks(folder_lake, strings=names) == {}
    rows = enriched_rows(folder_lake)
    assert (GROUP, 1) not in {(r["chat_id"], r["message_id"]) for r in rows}
    for path in Path(folder_lake.enriched).rglob("*.parquet"):
        assert pq.read_schema(path).remove_metadata() == SCHEMA


def test_forget_chat_removes_the_chat_and_keeps_the_others(folder_lake):
    fill(folder_lake, conversation())

    result = CliRunner().invoke(main, ["forget", "--chat", str(GROUP), "--yes"])

    assert result.exit_code == 0, result.output
    strings = (str(GROUP), "Test Group")
    assert folder_leaks(folder_lake, strings=strings, number=GROUP) == {}
    assert set(others_messages(folder_lake)) == {(SECOND_GROUP, 1), (TARGET, 7)}


def test_a_dry_run_reports_the_days_and_changes_nothing(folder_lake, tmp_path):
    fill(folder_lake, conversation())
    before = snapshot(tmp_path)

    result = CliRunner().invoke(main, ["forget", "--user", str(TARGET), "--dry-run"])

    assert result.exit_code == 0, result.output
    assert snapshot(tmp_path) == before
    lines = result.stdout.splitlines()
    assert lines[0].startswith("2024-03-04 raw_deleted=2 raw_redacted=1 rows_dropped=1")
    assert lines[1].startswith("2024-03-05 raw_deleted=6 raw_redacted=3 rows_dropped=4")
    # The callback query has no date of its own: it is filed on its arrival day.
    today = privacy.lake_today(folder_lake)
    assert lines[2].startswith(f"{today} raw_deleted=1 raw_redacted=0")


def test_declining_the_confirmation_changes_nothing(folder_lake, tmp_path):
    fill(folder_lake, conversation())
    before = snapshot(tmp_path)

    result = CliRunner().invoke(main, ["forget", "--user", str(TARGET)], input="n\n")

    assert result.exit_code == 1
    assert "Erase them for good?" in result.output
    assert snapshot(tmp_path) == before


def test_forget_needs_someone_to_forget(folder_lake):
    result = CliRunner().invoke(main, ["forget", "--yes"])

    assert result.exit_code == 2
    assert "give at least one --user or --chat" in result.output


@pytest.mark.parametrize(
    ("update", "about"),
    [
        (message(1, 1, TARGET_USER, DAY_ONE, text="x"), True),
        (message(1, 1, OTHER_USER, DAY_ONE, text="x"), False),
        (message(1, 1, OTHER_USER, DAY_ONE, left_chat_member=TARGET_USER), True),
        (message(1, 1, OTHER_USER, DAY_ONE, new_chat_members=[TARGET_USER]), True),
        ({"update_id": 1, "poll_answer": {"poll_id": "1", "user": TARGET_USER}}, True),
        ({"update_id": 1, "inline_query": {"id": "1", "from": OTHER_USER}}, False),
        ("not an update", False),
    ],
)
def test_which_updates_are_about_a_user(update, about):
    assert privacy.is_about(update, privacy.Subjects.of(users=[TARGET])) is about


def test_a_positive_chat_id_is_a_private_chat_and_so_its_person():
    subjects = privacy.Subjects.of(chats=[TARGET, GROUP])

    assert subjects.users == {TARGET}
    assert subjects.chats == {TARGET, GROUP}


def test_redaction_keeps_the_update_itself_and_cuts_only_their_parts():
    update = message(3, 2, OTHER_USER, DAY_ONE, text="a reply")
    update["message"]["reply_to_message"] = {"message_id": 1, "from": TARGET_USER}
    update["message"]["quote"] = {"text": "secret", "position": 0}

    redacted = privacy.redact(update, frozenset({TARGET}))

    assert redacted["message"]["reply_to_message"] == {"message_id": 1}
    assert "quote" not in redacted["message"]
    assert redacted["message"]["from"] == OTHER_USER
    assert privacy.redact(redacted, frozenset({TARGET})) == redacted


def days_ago(today: date, days: int) -> int:
    moment = datetime.combine(today - timedelta(days=days), datetime.min.time(), UTC)
    return int((moment + timedelta(hours=12)).timestamp())


def aged_lake(settings: Settings) -> dict[int, str]:
    """One message 10 days, 3 days and 0 days old; keys by age."""
    today = privacy.lake_today(settings)
    updates = {
        age: message(100 + age, 100 + age, OTHER_USER, days_ago(today, age), text="t")
        for age in (10, 3, 0)
    }
    keys = fill(settings, list(updates.values()))
    return dict(zip(updates, keys, strict=True))


def test_purge_removes_raw_partitions_older_than_n_days(folder_lake):
    keys = aged_lake(folder_lake)
    raw = runtime.store(folder_lake.raw)

    result = CliRunner().invoke(main, ["purge", "--older-than", "5", "--yes"])

    assert result.exit_code == 0, result.output
    assert [raw.exists(keys[age]) for age in (10, 3, 0)] == [False, True, True]
    assert len(enriched_rows(folder_lake)) == 3


def test_purge_of_the_enriched_layer_uses_its_own_retention(folder_lake, monkeypatch):
    keys = aged_lake(folder_lake)
    monkeypatch.setenv("TGLAKE_ENRICHED_RETENTION_DAYS", "5")
    monkeypatch.setenv("TGLAKE_RAW_RETENTION_DAYS", "1")

    result = CliRunner().invoke(main, ["purge", "--layer", "enriched", "--yes"])

    assert result.exit_code == 0, result.output
    assert sorted(r["message_id"] for r in enriched_rows(folder_lake)) == [100, 103]
    assert all(runtime.store(folder_lake.raw).exists(key) for key in keys.values())


def test_purge_refuses_a_layer_kept_forever(folder_lake):
    result = CliRunner().invoke(main, ["purge", "--yes"])

    assert result.exit_code == 2
    assert "TGLAKE_RAW_RETENTION_DAYS is 0" in result.output


def test_a_purge_dry_run_lists_the_days_and_removes_nothing(folder_lake, tmp_path):
    aged_lake(folder_lake)
    before = snapshot(tmp_path)
    today = privacy.lake_today(folder_lake)

    result = CliRunner().invoke(main, ["purge", "--older-than", "5", "--dry-run"])

    assert result.exit_code == 0, result.output
    assert result.stdout == f"{today - timedelta(days=10)} objects=1\n"
    assert snapshot(tmp_path) == before


def test_purge_removes_every_version_on_a_versioned_bucket(s3_lake):
    enable_versioning()
    keys = aged_lake(s3_lake)
    aged_lake(s3_lake)

    result = CliRunner().invoke(main, ["purge", "--older-than", "5", "--yes"])

    assert result.exit_code == 0, result.output
    listed = boto3.client("s3").list_object_versions(Bucket=RAW_BUCKET, Prefix="lake/")
    names = {item["Key"] for item in listed.get("Versions", [])}
    names |= {item["Key"] for item in listed.get("DeleteMarkers", [])}
    assert names == {f"lake/{keys[3]}", f"lake/{keys[0]}"}


def test_an_enriched_purge_removes_the_dirty_markers_of_its_days(folder_lake):
    aged_lake(folder_lake)
    today = privacy.lake_today(folder_lake)
    enriched = runtime.store(folder_lake.enriched)
    old, recent = today - timedelta(days=10), today - timedelta(days=3)
    for day in (old, recent):
        compaction.mark_dirty(enriched, day, name="late")

    result = CliRunner().invoke(
        main, ["purge", "--layer", "enriched", "--older-than", "5", "--yes"]
    )

    assert result.exit_code == 0, result.output
    assert compaction.dirty_days(enriched) == [recent]


def test_forget_does_not_bring_back_a_deleted_update_it_redacts(s3_lake):
    enable_versioning()
    keys = fill(s3_lake, conversation())
    raw = runtime.store(s3_lake.raw)
    raw.delete([keys[2]])  # another's reply to the target, deleted before

    result = CliRunner().invoke(main, ["forget", "--user", str(TARGET), "--yes"])

    assert result.exit_code == 0, result.output
    assert bucket_leaks() == {}
    live = [json.loads(raw.get(key)) for key in raw.keys(layout.RAW_PREFIX)]
    assert 3 not in [update["update_id"] for update in live]


def test_forget_counts_a_body_nested_too_deeply_to_inspect_as_unreadable(folder_lake):
    fill(folder_lake, conversation())
    deep = b"[" * 600 + b"]" * 600  # json reads it; a recursive walk does not
    key = layout.quarantine_key(date(2024, 3, 4), "0", deep)
    runtime.store(folder_lake.raw).put(key, deep)

    result = CliRunner().invoke(main, ["forget", "--user", str(TARGET), "--yes"])

    assert result.exit_code == 0, result.output
    assert "(1 unreadable)" in result.stderr
    assert folder_leaks(folder_lake) == {}
