"""``tglake import-export``: Telegram Desktop exports into the raw layer and Parquet."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from chalicelib import layout
from chalicelib.cli import main
from chalicelib.export import (
    CHANNEL_BOT,
    GROUP_ANONYMOUS_BOT,
    SYNTHETIC_BASE,
    Converter,
    read_export,
    repair,
)
from chalicelib.ingest import Ingestor
from chalicelib.storage import open_store
from tests.conftest import SAMPLES

FIXTURES = Path(__file__).parent / "fixtures"
SUPERGROUP = FIXTURES / "export_supergroup.json"
CHANNEL = FIXTURES / "export_channel.json"
BASIC = FIXTURES / "export_basic_group.json"
SUPERGROUP_ID = -1001234567890
BASIC_ID = -4567


def import_export(*args: str):
    result = CliRunner().invoke(main, ["import-export", *map(str, args)])
    assert "Traceback" not in result.output
    return result


def converted(path: Path, **options) -> dict[int, dict]:
    """Each exported message id's update (or skip reason)."""
    [chat], _ = read_export(path)
    converter = Converter(chat, **options)
    return {m["id"]: converter.update(m) for m in chat.messages}


def raw_files(settings) -> dict[str, bytes]:
    root = Path(settings.raw)
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.glob("telegram/*/*.json")
    }


def rows(settings) -> list[dict]:
    files = sorted(Path(settings.enriched).glob("telegram/*/*.parquet"))
    return [row for f in files for row in pq.read_table(f).to_pylist()]


def store_webhook_update(settings, message: dict, update_id: int) -> None:
    body = json.dumps({"update_id": update_id, "message": message}).encode()
    assert Ingestor(settings, open_store(settings.raw)).ingest(body).is_stored


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (rb'"a\x0Bb"', rb'"a\u000Bb"'),
        (rb'"\x1f"', rb'"\u001f"'),
        (rb'"C:\\x41"', rb'"C:\\x41"'),
        (rb'"\\\x0B"', rb'"\\\u000B"'),
        (rb'"tab\t"', rb'"tab\t"'),
    ],
)
def test_repair_rewrites_only_the_exporters_escapes(raw, expected):
    assert repair(raw) == expected
    json.loads(repair(raw))


def test_control_characters_written_as_xnn_survive_the_import():
    updates = converted(SUPERGROUP)

    assert updates[3]["message"]["text"] == "linha\x0bum\x1fdois"
    assert updates[15]["message"]["text"] == "caminho C:\\x41"


def test_a_supergroup_id_gains_the_minus_100_prefix_and_keeps_message_ids():
    updates = converted(SUPERGROUP)

    message = updates[2]["message"]
    assert message["chat"] == {
        "id": SUPERGROUP_ID,
        "type": "supergroup",
        "title": "Test Group",
    }
    assert message["message_id"] == 2
    assert updates[2]["update_id"] == -2
    assert message["from"] == {"id": 10, "first_name": "Ana Test"}
    assert message["date"] == 1699992000


def test_list_text_is_joined_with_entities_in_utf16_offsets():
    message = converted(SUPERGROUP)[2]["message"]

    assert message["text"] == "veja https://example.org e 👍 isto"
    assert message["entities"] == [
        {"offset": 5, "length": 19, "type": "url"},
        {"offset": 27, "length": 7, "type": "bold"},
    ]


def test_an_edited_message_keeps_its_edit_date():
    assert converted(SUPERGROUP)[3]["message"]["edit_date"] == 1699992300


@pytest.mark.parametrize(
    ("exported_id", "sender", "sender_chat"),
    [
        (4, GROUP_ANONYMOUS_BOT, SUPERGROUP_ID),
        (5, CHANNEL_BOT, -1002222222222),
    ],
)
def test_a_message_sent_on_behalf_of_a_chat_gets_the_bot_apis_fake_sender(
    exported_id, sender, sender_chat
):
    message = converted(SUPERGROUP)[exported_id]["message"]

    assert message["from"] == sender
    assert message["sender_chat"]["id"] == sender_chat


@pytest.mark.parametrize(
    ("exported_id", "field", "value"),
    [
        (6, "new_chat_members", [{"first_name": "Carla Test"}]),
        (7, "new_chat_members", [{"id": 12, "first_name": "Dora Test"}]),
        (8, "left_chat_member", {"id": 12, "first_name": "Dora Test"}),
        (
            9,
            "pinned_message",
            {
                "message_id": 2,
                "chat": {
                    "id": SUPERGROUP_ID,
                    "type": "supergroup",
                    "title": "Test Group",
                },
                "date": 0,
            },
        ),
        (10, "tglake_export_action", "edit_chat_theme"),
    ],
)
def test_service_messages_are_kept_with_the_bot_apis_fields(exported_id, field, value):
    message = converted(SUPERGROUP)[exported_id]["message"]

    assert message[field] == value
    assert "text" not in message


@pytest.mark.parametrize(
    ("exported_id", "expected"),
    [
        (11, {"voice": {"duration": 4, "mime_type": "audio/ogg"}}),
        (12, {"caption": "foto", "photo": [{"width": 640, "height": 480}]}),
        (
            13,
            {
                "video": {
                    "duration": 10,
                    "width": 320,
                    "height": 240,
                    "mime_type": "video/mp4",
                }
            },
        ),
    ],
)
def test_media_become_bot_api_content_keys(exported_id, expected):
    message = converted(SUPERGROUP)[exported_id]["message"]

    assert {key: message[key] for key in expected} == expected
    assert "text" not in message


def test_a_reply_points_at_the_replied_message():
    message = converted(SUPERGROUP)[13]["message"]

    assert message["reply_to_message"]["message_id"] == 12


def test_an_unsupported_message_is_skipped_with_its_reason():
    assert converted(SUPERGROUP)[14] == "type unsupported"


def test_history_from_before_a_migration_gets_ids_no_real_message_has():
    plain = converted(SUPERGROUP)[-999999990]["message"]
    known = converted(SUPERGROUP, migrated_from=-4567)

    assert plain["message_id"] <= -SYNTHETIC_BASE
    assert plain["chat"]["id"] == SUPERGROUP_ID
    assert known[-999999990]["message"]["chat"] == {
        "id": -4567,
        "type": "group",
        "title": "Test Group",
    }
    assert known[1]["message"]["migrate_from_chat_id"] == -4567


def test_a_channel_export_becomes_channel_posts():
    updates = converted(CHANNEL)

    post = updates[2]["channel_post"]
    assert post["chat"]["id"] == -1002222222222
    assert post["sender_chat"]["id"] == -1002222222222
    assert post["author_signature"] == "Editor"
    assert "from" not in post
    assert updates[1]["channel_post"]["channel_chat_created"] is True


def test_a_basic_group_id_gets_a_minus_and_synthetic_message_ids():
    updates = converted(BASIC)

    ids = [updates[n]["message"]["message_id"] for n in (100, 101, 102, 103, 104)]
    assert all(i <= -SYNTHETIC_BASE for i in ids)
    assert len(set(ids)) == 5
    assert updates[100]["message"]["chat"]["id"] == BASIC_ID
    assert updates[104]["message"]["reply_to_message"]["message_id"] == ids[1]
    assert updates[104]["message"]["entities"] == [
        {"offset": 4, "length": 5, "type": "text_mention", "user": {"id": 11}}
    ]


def test_importing_the_supergroup_export_compacts_every_message(folder_lake):
    result = import_export(SUPERGROUP)

    assert result.exit_code == 0, result.output
    assert "messages=16 written=15" in result.stdout
    assert "skipped=1 (1 type unsupported)" in result.stdout
    assert "days=1" in result.stdout
    table = {row["message_id"]: row for row in rows(folder_lake)}
    assert len(table) == 15
    assert table[2]["text"] == "veja https://example.org e 👍 isto"
    assert table[9]["service_type"] == "pinned_message"
    assert table[8]["left_member_id"] == 12
    assert table[11]["content_type"] == "voice"
    assert table[12]["caption"] == "foto"
    assert table[4]["sender_chat_id"] == SUPERGROUP_ID


def test_re_importing_writes_the_same_keys_and_rows(folder_lake):
    import_export(SUPERGROUP)
    first_files, first_rows = raw_files(folder_lake), rows(folder_lake)

    result = import_export(SUPERGROUP)

    assert result.exit_code == 0
    assert raw_files(folder_lake) == first_files
    assert rows(folder_lake) == first_rows


def test_the_webhooks_copy_of_a_supergroup_message_wins(folder_lake):
    message = {
        "message_id": 2,
        "from": {"id": 10, "is_bot": False, "first_name": "Ana", "username": "ana"},
        "chat": {"id": SUPERGROUP_ID, "type": "supergroup", "title": "Test Group"},
        "date": 1699992000,
        "text": "veja https://example.org e 👍 isto",
    }
    store_webhook_update(folder_lake, message, update_id=80001)

    import_export(SUPERGROUP)

    matching = [row for row in rows(folder_lake) if row["message_id"] == 2]
    assert len(matching) == 1
    assert matching[0]["update_id"] == 80001
    assert matching[0]["user_username"] == "ana"


def test_a_basic_group_message_the_webhook_stored_is_not_imported_again(folder_lake):
    message = {
        "message_id": 5,
        "from": {"id": 10, "is_bot": False, "first_name": "Ana"},
        "chat": {"id": BASIC_ID, "type": "group", "title": "Small Group"},
        "date": 1700000000,
        "text": "bom dia",
    }
    store_webhook_update(folder_lake, message, update_id=80002)

    result = import_export(BASIC)

    assert "written=4 unchanged=0 already_received=1" in result.stdout
    texts = sorted(row["text"] for row in rows(folder_lake))
    assert texts == ["bom dia", "ok", "ok", "sim Bruno", "tudo bem?"]
    [webhook_row] = [row for row in rows(folder_lake) if row["text"] == "bom dia"]
    assert webhook_row["message_id"] == 5


def test_a_basic_group_message_unlike_webhook_data_is_imported(folder_lake):
    message = {
        "message_id": 5,
        "from": {"id": 10, "is_bot": False, "first_name": "Ana"},
        "chat": {"id": BASIC_ID, "type": "group", "title": "Small Group"},
        "date": 1700000000,
        "text": "boa noite",
    }
    store_webhook_update(folder_lake, message, update_id=80002)

    result = import_export(BASIC)

    assert "written=5 unchanged=0 already_received=0" in result.stdout
    texts = sorted(row["text"] for row in rows(folder_lake))
    assert texts == ["boa noite", "bom dia", "ok", "ok", "sim Bruno", "tudo bem?"]


def test_re_importing_a_basic_group_does_not_match_its_own_import(folder_lake):
    import_export(BASIC)

    result = import_export(BASIC)

    assert "written=0 unchanged=5 already_received=0" in result.stdout
    assert len(rows(folder_lake)) == 5


def test_chats_outside_the_allowlist_are_left_out(folder_lake, monkeypatch):
    monkeypatch.setenv("TGLAKE_CHAT_IDS", str(SUPERGROUP_ID))

    result = import_export(CHANNEL)

    assert "written=0" in result.stdout
    assert "ignored_chat=2" in result.stdout
    assert raw_files(folder_lake) == {}


def test_a_dry_run_writes_nothing(folder_lake):
    result = import_export(SUPERGROUP, "--dry-run")

    assert result.exit_code == 0
    assert "would write 15" in result.stdout
    assert raw_files(folder_lake) == {}


def test_no_compact_leaves_the_enriched_layer_alone(folder_lake):
    result = import_export(CHANNEL, "--no-compact")

    assert result.exit_code == 0
    assert len(raw_files(folder_lake)) == 2
    assert rows(folder_lake) == []


def test_a_file_that_is_not_an_export_is_one_line(folder_lake, tmp_path):
    broken = tmp_path / "result.json"
    broken.write_text('{"messages": [')

    result = import_export(broken)

    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ")
    assert "is not JSON" in result.stderr


def test_imported_keys_carry_negative_update_ids(folder_lake):
    import_export(CHANNEL)

    parsed = [layout.parse_raw_key(key) for key in raw_files(folder_lake)]
    assert sorted(p.update_id for p in parsed) == [-2, -1]


def test_the_shared_desktop_export_sample_imports(folder_lake):
    sample = SAMPLES / "desktop_export_chatstyle_personal_chat.json"
    if not sample.is_file():
        pytest.skip("../shared/telegram-samples is not present")

    result = import_export(sample)

    assert result.exit_code == 0, result.output
    assert "messages=12 written=12" in result.stdout
    table = rows(folder_lake)
    assert len(table) == 12
    assert {row["chat_id"] for row in table} == {222}
    assert {row["user_id"] for row in table} == {111, 222}
    by_text = {row["text"]: row for row in table}
    assert "смотри https://example.com/a круто" in by_text
    assert "ну реально норм, @boris_k глянь" in by_text
    pin = next(row for row in table if row["service_type"] == "pinned_message")
    assert pin["user_id"] == 222
    assert [row["content_type"] for row in table].count("sticker") == 1


def test_a_dry_run_counts_the_days_it_would_touch(folder_lake):
    result = import_export(BASIC, "--dry-run")

    assert result.exit_code == 0, result.output
    assert "would write 5 over" in result.stdout
    assert " 0 days" not in result.stdout
