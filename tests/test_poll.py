"""``tglake poll``: getUpdates into the raw layer through the webhook's ingestion."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from chalicelib import layout
from chalicelib.cli import main
from chalicelib.errors import StorageError
from chalicelib.ingest import Ingestor
from chalicelib.poll import OFFSET_MAX_AGE, Poller, serialise
from chalicelib.storage import LocalStore, open_store
from chalicelib.telegram import BotApi
from tests.fixtures.fake_bot_api import FAKE_TOKEN, FakeBotApi, rate_limited, serve

GROUP = -1001234567890


def update(update_id: int, chat_id: int = GROUP, text: str = "olá 👋") -> dict:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id - 100,
            "from": {"id": 42, "is_bot": False, "first_name": "Test"},
            "chat": {"id": chat_id, "type": "supergroup", "title": "Group"},
            "date": 1700000000 + update_id,
            "text": text,
        },
    }


@pytest.fixture
def telegram(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBotApi]:
    with serve(monkeypatch) as fake:
        yield fake


def raw_bodies(settings) -> list[bytes]:
    root = Path(settings.raw)
    return sorted(path.read_bytes() for path in root.glob("telegram/*/*.json"))


def stored_offset(settings) -> int:
    key = layout.poll_offset_key(settings.bot_id)
    return json.loads((Path(settings.raw) / key).read_bytes())["offset"]


def poll_once(caplog: pytest.LogCaptureFixture, *args: str):
    caplog.set_level(logging.DEBUG)
    result = CliRunner().invoke(main, ["-v", "poll", "--once", "--timeout", "0", *args])
    for text in (result.stdout, result.stderr, caplog.text):
        assert FAKE_TOKEN not in text
    return result


def test_polled_updates_land_under_the_webhooks_keys(telegram, folder_lake, caplog):
    telegram.pending.extend([update(500), update(501)])

    result = poll_once(caplog)

    assert result.exit_code == 0, result.output
    expected = [serialise(update(500)), serialise(update(501))]
    assert raw_bodies(folder_lake) == sorted(expected)
    ingestor = Ingestor(folder_lake, open_store(folder_lake.raw))
    for body in expected:
        assert (Path(folder_lake.raw) / ingestor.ingest(body).key).read_bytes() == body
    assert stored_offset(folder_lake) == 502
    assert "updates=2" in result.stderr


def test_a_polled_update_is_one_line_of_compact_utf8_json(
    telegram, folder_lake, caplog
):
    telegram.pending.append(update(500))

    poll_once(caplog)

    [body] = raw_bodies(folder_lake)
    assert body.count(b"\n") == 0
    assert "olá 👋".encode() in body
    assert json.loads(body) == update(500)


def test_the_offset_survives_a_restart_and_confirms_stored_updates(
    telegram, folder_lake, caplog
):
    telegram.pending.extend([update(500), update(501)])
    poll_once(caplog)
    telegram.pending.append(update(502))

    result = poll_once(caplog)

    assert result.exit_code == 0
    assert telegram.offsets == [None, 502]
    assert [u["update_id"] for u in telegram.pending] == [502]
    assert stored_offset(folder_lake) == 503
    assert len(raw_bodies(folder_lake)) == 3


def test_polling_twice_without_news_stores_nothing_twice(telegram, folder_lake, caplog):
    telegram.pending.append(update(500))
    poll_once(caplog)
    poll_once(caplog)

    assert len(raw_bodies(folder_lake)) == 1
    assert stored_offset(folder_lake) == 501


def test_updates_from_other_chats_are_filtered_like_the_webhook(
    telegram, folder_lake, caplog, monkeypatch
):
    monkeypatch.setenv("TGLAKE_CHAT_IDS", str(GROUP))
    telegram.pending.extend([update(500), update(501, chat_id=-1009999999999)])

    result = poll_once(caplog)

    assert [json.loads(b)["update_id"] for b in raw_bodies(folder_lake)] == [500]
    assert stored_offset(folder_lake) == 502
    assert "ignored=1" in result.stderr


def test_a_webhook_in_place_is_explained_in_one_line(telegram, folder_lake, caplog):
    telegram.webhook["url"] = "https://example.org/api/webhook"

    result = poll_once(caplog)

    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1].startswith("Error: a webhook is set")
    assert "tglake webhook delete" in result.stderr
    assert "Traceback" not in result.output


def test_a_rate_limit_is_waited_out(telegram, folder_lake):
    waits: list[float] = []
    telegram.fail("getUpdates", rate_limited(2))
    telegram.pending.append(update(500))
    api = BotApi(FAKE_TOKEN, sleep=waits.append)

    Poller(folder_lake, api, open_store(folder_lake.raw)).run(timeout=0, once=True)

    assert waits == [2]
    assert len(raw_bodies(folder_lake)) == 1


class FailingStore(LocalStore):
    """A folder whose update writes fail, as S3 does in an outage."""

    def put(self, key: str, data: bytes) -> None:
        if key.startswith(layout.RAW_PREFIX):
            raise StorageError("cannot write: outage", location=self.location, key=key)
        super().put(key, data)


def test_a_failed_write_keeps_the_offset_so_nothing_is_lost(telegram, folder_lake):
    telegram.pending.extend([update(500), update(501)])
    api = BotApi(FAKE_TOKEN)
    broken = FailingStore(Path(folder_lake.raw))

    with pytest.raises(StorageError):
        Poller(folder_lake, api, broken).run(timeout=0, once=True)
    Poller(folder_lake, api, open_store(folder_lake.raw)).run(timeout=0, once=True)

    assert telegram.offsets == [None, None]
    assert len(raw_bodies(folder_lake)) == 2
    assert stored_offset(folder_lake) == 502


def test_an_offset_older_than_a_week_is_not_trusted(telegram, folder_lake):
    store = open_store(folder_lake.raw)
    api = BotApi(FAKE_TOKEN)
    Poller(folder_lake, api, store, clock=lambda: 1000.0).save_offset(900)
    later = Poller(folder_lake, api, store, clock=lambda: 1000.0 + OFFSET_MAX_AGE + 1)

    assert later.load_offset() is None
    assert Poller(folder_lake, api, store, clock=lambda: 1001.0).load_offset() == 900


def test_ctrl_c_stops_cleanly_with_the_offset_of_the_last_batch(
    telegram, folder_lake, caplog
):
    telegram.fail("getUpdates", (200, {"ok": True, "result": [update(500)]}))
    telegram.fail("getUpdates", KeyboardInterrupt())
    caplog.set_level(logging.INFO)

    result = CliRunner().invoke(main, ["poll", "--timeout", "0"])

    assert result.exit_code == 0, result.output
    assert "stopped:" in result.stderr
    assert "next_offset=501" in result.stderr
    assert stored_offset(folder_lake) == 501


def test_a_timeout_of_getupdates_is_one_line(telegram, folder_lake, caplog):
    telegram.fail("getUpdates", *[requests.ReadTimeout("slow")] * 4)

    result = poll_once(caplog)

    assert result.exit_code == 1
    assert "did not answer getUpdates" in result.stderr
