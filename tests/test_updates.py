"""Reading updates: kinds, chats, partition days and the enriched row."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from chalicelib.updates import (
    COLUMNS,
    LocalClock,
    as_int,
    file_day,
    inspect,
    message_row,
    message_values,
    version,
)

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
# 2024-03-11 02:30 UTC, which is 2024-03-10 23:30 in São Paulo (a Sunday).
LATE_EVENING = 1710124200
CHAT = {"id": -1001234567890, "type": "supergroup", "title": "T"}


@pytest.mark.parametrize(
    ("update", "kind", "chat_id"),
    [
        ({"update_id": 1, "message": {"chat": CHAT}}, "message", CHAT["id"]),
        (
            {"update_id": 1, "edited_message": {"chat": CHAT}},
            "edited_message",
            CHAT["id"],
        ),
        ({"update_id": 1, "channel_post": {"chat": CHAT}}, "channel_post", CHAT["id"]),
        (
            {"update_id": 1, "my_chat_member": {"chat": CHAT}},
            "my_chat_member",
            CHAT["id"],
        ),
        (
            {"update_id": 1, "message_reaction": {"chat": CHAT}},
            "message_reaction",
            CHAT["id"],
        ),
        (
            {"update_id": 1, "callback_query": {"id": "x", "message": {"chat": CHAT}}},
            "callback_query",
            CHAT["id"],
        ),
        (
            {"update_id": 1, "inline_query": {"id": "x", "query": ""}},
            "inline_query",
            None,
        ),
        (
            {"update_id": 1, "added_in_2030": {"chat": CHAT}},
            "added_in_2030",
            CHAT["id"],
        ),
        ({"update_id": 1}, "empty", None),
        ({"update_id": 1, "Ana Souza": {"chat": CHAT}}, "unknown", CHAT["id"]),
    ],
)
def test_inspect_names_the_kind_and_chat_of_every_update(update, kind, chat_id):
    info = inspect(update)

    assert (info.kind, info.chat_id, info.update_id) == (kind, chat_id, 1)


@pytest.mark.parametrize(
    "value",
    [None, [], "text", 3, {"message": {}}, {"update_id": "1"}, {"update_id": True}],
)
def test_values_that_are_not_updates_are_recognised(value):
    assert inspect(value) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [(5, 5), (-(1 << 63), -(1 << 63)), (1 << 63, None), (True, None), (5.0, None)],
)
def test_as_int_accepts_only_64_bit_integers(value, expected):
    assert as_int(value) == expected


def test_a_message_is_filed_under_its_own_local_date_not_its_arrival():
    info = inspect({"update_id": 1, "message": {"chat": CHAT, "date": LATE_EVENING}})
    arrived = datetime(2024, 3, 12, 9, 0, tzinfo=UTC)

    assert file_day(info, SAO_PAULO, arrived) == date(2024, 3, 10)
    assert file_day(info, ZoneInfo("UTC"), arrived) == date(2024, 3, 11)


def test_an_edit_is_filed_under_the_original_message_date():
    edit = {
        "update_id": 2,
        "edited_message": {"chat": CHAT, "date": LATE_EVENING, "edit_date": 1710300000},
    }

    assert file_day(inspect(edit), SAO_PAULO, datetime.now(UTC)) == date(2024, 3, 10)


def test_an_update_without_a_date_is_filed_under_its_arrival():
    info = inspect({"update_id": 3, "callback_query": {"id": "q"}})
    arrived = datetime(2024, 3, 11, 1, 0, tzinfo=UTC)

    assert file_day(info, SAO_PAULO, arrived) == date(2024, 3, 10)


@pytest.mark.parametrize(
    ("fields", "content_type", "service_type"),
    [
        ({"text": "oi"}, "text", None),
        ({"photo": [{"file_id": "p"}], "caption": "c"}, "photo", None),
        ({"sticker": {"file_id": "s"}}, "sticker", None),
        ({"voice": {"file_id": "v"}}, "voice", None),
        ({"animation": {}, "document": {}}, "animation", None),
        ({"new_chat_members": [{"id": 1}, {"id": 2}]}, "service", "new_chat_members"),
        ({"left_chat_member": {"id": 1}}, "service", "left_chat_member"),
        ({"pinned_message": {"message_id": 1}}, "service", "pinned_message"),
        ({}, "other", None),
    ],
)
def test_message_row_names_the_content_type(fields, content_type, service_type):
    update = {
        "update_id": 9,
        "message": {"message_id": 4, "chat": CHAT, "date": LATE_EVENING, **fields},
    }

    row = message_row(update, SAO_PAULO)

    assert (row["content_type"], row["service_type"]) == (content_type, service_type)


def test_message_row_gives_local_calendar_columns_and_a_utc_timestamp():
    update = {
        "update_id": 9,
        "message": {
            "message_id": 4,
            "chat": CHAT,
            "date": LATE_EVENING,
            "from": {"id": 77, "is_bot": False, "first_name": "A"},
            "reply_to_message": {"message_id": 3, "from": {"id": 78}},
            "forward_origin": {"type": "hidden_user"},
            "text": "\ud800 lone surrogate",
        },
    }

    row = message_row(update, SAO_PAULO)

    assert row["sent_at"] == datetime(2024, 3, 11, 2, 30, tzinfo=UTC)
    assert (row["local_date"], row["local_hour"], row["local_weekday"]) == (
        date(2024, 3, 10),
        23,
        7,
    )
    assert (row["reply_to_message_id"], row["reply_to_user_id"]) == (3, 78)
    assert row["is_forwarded"] is True
    assert row["text"].encode("utf-8")


@pytest.mark.parametrize(
    "update",
    [
        {"update_id": 1, "message": {"chat": CHAT}},
        {"update_id": 1, "message": {"message_id": 1}},
        {
            "update_id": 1,
            "callback_query": {"message": {"message_id": 1, "chat": CHAT}},
        },
    ],
)
def test_updates_without_a_message_identity_give_no_row(update):
    assert message_row(update, SAO_PAULO) is None


def test_the_latest_edit_wins_over_the_original_and_a_redelivery():
    message = {"message_id": 4, "chat": CHAT, "date": LATE_EVENING, "text": "a"}
    original = {"update_id": 10, "message": message}
    edit = {"update_id": 11, "edited_message": {**message, "edit_date": 1710200000}}
    later = {"update_id": 12, "edited_message": {**message, "edit_date": 1710300000}}
    clock = LocalClock(SAO_PAULO)

    ranked = sorted(
        [(later, "c"), (original, "a"), (edit, "b"), (original, "a2")],
        key=lambda pair: version(message_values(pair[0], clock), pair[1]),
    )

    assert [key for _, key in ranked] == ["a", "a2", "b", "c"]


def test_the_columns_are_the_schemas_and_the_dict_row_matches_the_values():
    from chalicelib.schema import SCHEMA, record_batch

    update = {
        "update_id": 9,
        "message": {"message_id": 4, "chat": CHAT, "date": LATE_EVENING},
    }
    values = message_values(update, LocalClock(SAO_PAULO))

    assert list(COLUMNS) == SCHEMA.names
    assert record_batch([values]).to_pylist() == [message_row(update, SAO_PAULO)]


@pytest.mark.parametrize(
    "zone",
    ["America/Sao_Paulo", "Europe/Berlin", "Asia/Kolkata", "Australia/Lord_Howe"],
)
def test_the_clock_agrees_with_zoneinfo_every_quarter_hour_across_changes(zone):
    tz = ZoneInfo(zone)
    clock = LocalClock(tz)
    # 2023 and 2024: summer time starts and ends, and Brazil's was abolished in 2019.
    start = int(datetime(2023, 1, 1, tzinfo=UTC).timestamp())
    for stamp in range(start, start + 2 * 366 * 86400, 15 * 60 + 7):
        moment = datetime.fromtimestamp(stamp, tz)
        expected = (
            (moment.date() - date(1970, 1, 1)).days,
            moment.hour,
            moment.isoweekday(),
        )
        assert clock.local(stamp) == expected, stamp
