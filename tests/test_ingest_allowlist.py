"""Which chats are kept: the allowlist, chat-less updates and group migrations."""

from __future__ import annotations

import json
import logging

import pytest
from chalice.test import Client

import app as tglake_app
from chalicelib import layout
from chalicelib.config import Settings
from chalicelib.ingest import Ingestor
from chalicelib.storage import open_store
from tests.conftest import ROOT

GROUP = -4012345
SUPERGROUP = -1009876543210
STRANGER = -1001111111111


def message(update_id: int, chat_id: int, **extra) -> bytes:
    """One message update of a chat, with extra message fields."""
    body = {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "chat": {"id": chat_id, "type": "group"},
            "date": 1710111600,
            **extra,
        },
    }
    return json.dumps(body).encode()


def kept(settings: Settings) -> list[bytes]:
    """The raw updates stored under telegram/."""
    store = open_store(settings.raw)
    return [store.get(item.key) for item in store.list(layout.RAW_PREFIX)]


@pytest.fixture
def allowlist(folder_lake, monkeypatch) -> Settings:
    monkeypatch.setenv("TGLAKE_CHAT_IDS", f"{GROUP}, 42")
    return Settings.from_env()


def test_updates_from_other_chats_are_answered_200_and_not_stored(
    client, allowlist, caplog
):
    caplog.set_level(logging.INFO, logger="chalicelib")

    ours = client.http.post("/webhook", body=message(1, GROUP, text="a"))
    theirs = client.http.post("/webhook", body=message(2, STRANGER, text="b"))

    assert (ours.status_code, theirs.status_code) == (200, 200)
    assert json.loads(theirs.body)["outcome"] == "ignored"
    assert kept(allowlist) == [message(1, GROUP, text="a")]
    assert f"chat_id={STRANGER} kind=message key=None" in caplog.text


@pytest.mark.parametrize(
    "body",
    [
        {"update_id": 3, "inline_query": {"id": "9", "from": {"id": 1}, "query": ""}},
        {"update_id": 4, "poll": {"id": "7", "question": "?", "options": []}},
        {"update_id": 5, "callback_query": {"id": "8", "from": {"id": 1}}},
    ],
)
def test_updates_without_a_chat_are_not_kept_under_an_allowlist(
    client, allowlist, body
):
    reply = client.http.post("/webhook", body=json.dumps(body).encode())

    assert reply.status_code == 200
    assert json.loads(reply.body)["outcome"] == "ignored"
    assert kept(allowlist) == []


def test_without_an_allowlist_every_chat_and_chatless_update_is_kept(
    client, folder_lake
):
    inline = {"update_id": 3, "inline_query": {"id": "9", "query": ""}}
    bodies = [message(1, STRANGER), json.dumps(inline).encode()]

    replies = [client.http.post("/webhook", body=body) for body in bodies]

    assert [reply.status_code for reply in replies] == [200, 200]
    assert sorted(kept(folder_lake)) == sorted(bodies)


def test_a_migrated_group_supergroup_id_is_accepted_from_then_on(client, allowlist):
    hand_over = message(10, GROUP, migrate_to_chat_id=SUPERGROUP)
    later = message(11, SUPERGROUP, text="depois da migração")

    replies = [client.http.post("/webhook", body=body) for body in (hand_over, later)]

    assert [json.loads(r.body)["outcome"] for r in replies] == ["stored", "stored"]
    assert sorted(kept(allowlist)) == sorted([hand_over, later])
    marker = open_store(allowlist.raw).get(layout.allowed_chat_key(SUPERGROUP))
    assert json.loads(marker) == {
        "chat_id": SUPERGROUP,
        "migrated_from_chat_id": GROUP,
    }


def test_another_warm_lambda_accepts_the_supergroup_after_the_hand_over(allowlist):
    first, second = (Ingestor(allowlist, open_store(allowlist.raw)) for _ in range(2))
    # The second Lambda has already turned the supergroup away once.
    early = second.ingest(message(9, SUPERGROUP))

    first.ingest(message(10, GROUP, migrate_to_chat_id=SUPERGROUP))
    fresh = Ingestor(allowlist, open_store(allowlist.raw))

    assert early.outcome == "ignored"
    assert fresh.ingest(message(11, SUPERGROUP)).outcome == "stored"


def test_the_supergroup_first_message_is_accepted_before_the_mapping_exists(
    allowlist,
):
    first_message = message(20, SUPERGROUP, migrate_from_chat_id=GROUP)
    store = open_store(allowlist.raw)

    accepted = Ingestor(allowlist, store).ingest(first_message)
    later = Ingestor(allowlist, open_store(allowlist.raw)).ingest(
        message(21, SUPERGROUP)
    )

    assert accepted.outcome == "stored"
    assert later.outcome == "stored"
    assert store.exists(layout.allowed_chat_key(SUPERGROUP))


def test_a_migration_from_a_chat_we_do_not_keep_is_not_accepted(allowlist):
    ingestor = Ingestor(allowlist, open_store(allowlist.raw))

    hand_over = ingestor.ingest(message(30, STRANGER, migrate_to_chat_id=SUPERGROUP))
    claimed = ingestor.ingest(message(31, SUPERGROUP, migrate_from_chat_id=STRANGER))

    assert (hand_over.outcome, claimed.outcome) == ("ignored", "ignored")
    assert kept(allowlist) == []
    assert not open_store(allowlist.raw).exists(layout.allowed_chat_key(SUPERGROUP))


@pytest.fixture
def deployed_client(folder_lake, monkeypatch):
    """The app as a deployed stage (one that .chalice/config.json does not hold)."""
    monkeypatch.setenv("TGLAKE_STAGE", "tgtest")
    monkeypatch.setenv("TGLAKE_SECRET_TOKEN", "deployed_secret")
    with Client(tglake_app.app, stage_name="tgtest", project_dir=str(ROOT)) as test:
        yield test


def test_a_deployed_stage_refuses_an_empty_allowlist_with_a_clear_500(
    deployed_client, folder_lake, caplog
):
    caplog.set_level(logging.ERROR)
    headers = {"X-Telegram-Bot-Api-Secret-Token": "deployed_secret"}

    reply = deployed_client.http.post("/webhook", headers=headers, body=message(1, 5))

    assert reply.status_code == 500
    assert json.loads(reply.body) == {"ok": False, "error": "server misconfigured"}
    assert "outcome=misconfigured" in caplog.text
    assert "TGLAKE_CHAT_IDS is empty on a deployed stage" in caplog.text
    assert kept(folder_lake) == []


def test_a_deployed_stage_accepts_every_chat_when_told_explicitly(
    deployed_client, folder_lake, monkeypatch
):
    monkeypatch.setenv("TGLAKE_ALLOW_ALL_CHATS", "true")
    headers = {"X-Telegram-Bot-Api-Secret-Token": "deployed_secret"}

    reply = deployed_client.http.post("/webhook", headers=headers, body=message(1, 5))

    assert reply.status_code == 200
    assert kept(folder_lake) == [message(1, 5)]
