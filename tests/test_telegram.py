"""The Bot API client and the ``webhook set|info|delete`` commands, against fakes."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from click.testing import CliRunner

from chalicelib.cli import main
from chalicelib.errors import ConfigError, TelegramError
from chalicelib.telegram import ALLOWED_UPDATES, ApiError, BotApi
from tests.fixtures.fake_bot_api import FAKE_TOKEN, FakeBotApi, rate_limited, serve


@pytest.fixture
def telegram(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBotApi]:
    with serve(monkeypatch) as fake:
        yield fake


@pytest.fixture
def run(folder_lake, monkeypatch, caplog):
    """Run tglake with a secret configured; check that the token never shows."""
    monkeypatch.setenv("TGLAKE_SECRET_TOKEN", "hook_secret-1")
    caplog.set_level(logging.DEBUG)

    def invoke(*args: str):
        result = CliRunner().invoke(main, ["-v", *args])
        for text in (result.stdout, result.stderr, caplog.text, str(result.exception)):
            assert FAKE_TOKEN not in text
        return result

    return invoke


class _Handler(BaseHTTPRequestHandler):
    """Answers from the server's script: (status, body, delay) per request."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status, body, delay = self.server.script.pop(0)  # type: ignore[attr-defined]
        time.sleep(delay)
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps(body).encode())
        except BrokenPipeError:
            pass  # the client gave up waiting, as the test wants

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def local_api() -> Iterator[tuple[ThreadingHTTPServer, str]]:
    """A real HTTP server on localhost playing the Bot API from a script."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.script = []  # type: ignore[attr-defined]
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    yield server, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_call_returns_telegrams_result(telegram):
    api = BotApi(FAKE_TOKEN)

    assert api.get_me()["username"] == "tglake_test_bot"


def test_a_wrong_token_is_a_telegram_error_with_the_description_only(telegram):
    api = BotApi("111:wrong-token-0000000000")

    with pytest.raises(ApiError) as caught:
        api.get_me()

    assert caught.value.code == 401
    assert "Unauthorized" in str(caught.value)
    assert "check TELEGRAM_BOT_TOKEN" in str(caught.value)
    assert "wrong-token" not in str(caught.value)


def test_a_429_waits_the_retry_after_that_telegram_asked_for(telegram):
    waits: list[float] = []
    telegram.fail("getMe", rate_limited(3), rate_limited(1))
    api = BotApi(FAKE_TOKEN, sleep=waits.append)

    me = api.get_me()

    assert me["id"] == telegram.me["id"]
    assert waits == [3, 1]


def test_a_429_asking_for_a_wait_over_the_cap_fails_at_once(telegram):
    waits: list[float] = []
    telegram.fail("getMe", rate_limited(600))
    api = BotApi(FAKE_TOKEN, sleep=waits.append, max_retry_after=60)

    with pytest.raises(ApiError, match="retry after 600"):
        api.get_me()
    assert waits == []


def test_a_429_that_never_ends_gives_up_after_the_retries(telegram):
    waits: list[float] = []
    telegram.fail("getMe", *[rate_limited(1)] * 5)
    api = BotApi(FAKE_TOKEN, sleep=waits.append, rate_limit_retries=2)

    with pytest.raises(ApiError) as caught:
        api.get_me()
    assert caught.value.code == 429
    assert waits == [1, 1]


def test_server_errors_are_retried_by_the_session(telegram):
    telegram.fail("getMe", (502, {}), (503, {}))
    api = BotApi(FAKE_TOKEN, backoff=0)

    assert api.get_me()["username"] == "tglake_test_bot"


def test_a_server_error_that_persists_becomes_a_telegram_error(telegram):
    telegram.fail("getMe", *[(500, {})] * 4)
    api = BotApi(FAKE_TOKEN, backoff=0, retries=2)

    with pytest.raises(ApiError, match=r"HTTP 500"):
        api.get_me()


def test_a_timeout_says_which_call_and_not_the_token(telegram):
    telegram.fail("getMe", requests.ReadTimeout(f"/bot{FAKE_TOKEN}/getMe timed out"))
    api = BotApi(FAKE_TOKEN, retries=0)

    with pytest.raises(TelegramError, match="did not answer getMe") as caught:
        api.get_me()
    assert caught.value.__context__ is None


def test_a_missing_token_is_a_configuration_error():
    with pytest.raises(ConfigError, match="TELEGRAM_BOT_TOKEN"):
        BotApi("")


def test_the_client_can_be_printed_without_its_token():
    api = BotApi(FAKE_TOKEN)

    assert FAKE_TOKEN not in repr(api)
    assert FAKE_TOKEN not in str(vars(api).get("base_url"))


def test_a_real_read_timeout_is_an_error_without_the_token(local_api, caplog):
    server, url = local_api
    server.script.extend([(200, {"ok": True, "result": {}}, 0.4)] * 2)
    caplog.set_level(logging.DEBUG)
    api = BotApi(FAKE_TOKEN, base_url=url, timeout=0.2, retries=1, backoff=0)

    with pytest.raises(TelegramError, match=r"within 0.2 s") as caught:
        api.get_me()

    assert FAKE_TOKEN not in str(caught.value)
    assert FAKE_TOKEN not in caplog.text


def test_an_unreachable_server_is_an_error_without_the_token(local_api, caplog):
    server, url = local_api
    server.shutdown()
    server.server_close()
    caplog.set_level(logging.DEBUG)
    api = BotApi(FAKE_TOKEN, base_url=url, retries=1, backoff=0)

    with pytest.raises(TelegramError, match="cannot reach Telegram") as caught:
        api.get_me()

    assert FAKE_TOKEN not in str(caught.value)
    assert FAKE_TOKEN not in caplog.text


def test_urllib3_debug_lines_show_the_call_but_not_the_token(local_api, caplog):
    server, url = local_api
    server.script.extend([(502, {}, 0), (200, {"ok": True, "result": {"id": 1}}, 0)])
    caplog.set_level(logging.DEBUG)
    api = BotApi(FAKE_TOKEN, base_url=url, backoff=0)

    assert api.get_me() == {"id": 1}

    assert "/getMe" in caplog.text
    assert "502" in caplog.text
    assert FAKE_TOKEN not in caplog.text


def test_webhook_set_sends_the_secret_and_every_kind_and_keeps_pending(telegram, run):
    telegram.pending.append({"update_id": 1, "message": {}})

    result = run("webhook", "set", "--url", "https://example.org/api/webhook")

    assert result.exit_code == 0, result.output
    assert telegram.webhook["url"] == "https://example.org/api/webhook"
    assert telegram.webhook["secret_token"] == "hook_secret-1"
    assert telegram.allowed_updates == list(ALLOWED_UPDATES)
    assert len(telegram.pending) == 1
    assert "1 pending updates kept" in result.stderr
    assert "hook_secret-1" not in result.output


def test_webhook_set_fails_when_telegram_ignored_the_list(telegram, run):
    telegram.allowed_updates = ["message"]
    telegram.fail("setWebhook", (200, {"ok": True, "result": True}))
    telegram.webhook["url"] = "https://example.org/api/webhook"

    result = run("webhook", "set", "--url", "https://example.org/api/webhook")

    assert result.exit_code == 1
    assert "did not take every kind" in result.stderr
    assert "chat_member" in result.stderr


def test_webhook_set_fails_when_the_url_did_not_take(telegram, run):
    telegram.fail("setWebhook", (200, {"ok": True, "result": True}))

    result = run("webhook", "set", "--url", "https://example.org/api/webhook")

    assert result.exit_code == 1
    assert "did not take" in result.stderr
    assert "Traceback" not in result.output


def test_webhook_set_refuses_to_run_without_a_secret(telegram, run, monkeypatch):
    monkeypatch.delenv("TGLAKE_SECRET_TOKEN")

    result = run("webhook", "set", "--url", "https://example.org/api/webhook")

    assert result.exit_code == 1
    assert "--allow-no-secret" in result.stderr
    assert telegram.webhook["url"] == ""


def test_webhook_set_with_a_bad_token_is_one_line(telegram, run, monkeypatch):
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "111:some-other-token-000000")

    result = run("webhook", "set", "--url", "https://example.org/api/webhook")

    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "Error: Telegram refused setWebhook: Unauthorized (401); "
        "check TELEGRAM_BOT_TOKEN"
    ]


def test_webhook_info_prints_the_state_and_passes_when_healthy(telegram, run):
    telegram.webhook["url"] = "https://example.org/api/webhook"
    telegram.allowed_updates = list(ALLOWED_UPDATES)

    result = run("webhook", "info")

    assert result.exit_code == 0, result.output
    assert "url: https://example.org/api/webhook" in result.stdout
    assert "pending_update_count: 0" in result.stdout
    assert "last_error: none" in result.stdout


@pytest.mark.parametrize(
    ("pending", "error_age", "expected"),
    [
        (150, None, "150 updates pending"),
        (0, 60, "last error 60 s ago: Wrong response from the webhook"),
    ],
)
def test_webhook_info_fails_on_a_backlog_or_a_recent_error(
    telegram, run, pending, error_age, expected
):
    telegram.webhook["url"] = "https://example.org/api/webhook"
    telegram.allowed_updates = list(ALLOWED_UPDATES)
    telegram.pending.extend({"update_id": n} for n in range(pending))
    if error_age is not None:
        message = "Wrong response from the webhook: 503 Service Unavailable"
        telegram.last_error = (int(time.time()) - error_age, message)

    result = run("webhook", "info", "--max-pending", "100")

    assert result.exit_code == 1
    assert expected in result.stderr


def test_webhook_info_tolerates_an_old_error(telegram, run):
    telegram.webhook["url"] = "https://example.org/api/webhook"
    telegram.allowed_updates = list(ALLOWED_UPDATES)
    telegram.last_error = (int(time.time()) - 7200, "Connection timed out")

    result = run("webhook", "info", "--error-window", "3600")

    assert result.exit_code == 0
    assert "Connection timed out (2 h ago)" in result.stdout


def test_webhook_info_hides_a_token_inside_the_url(telegram, run):
    telegram.webhook["url"] = f"https://example.org/hook/{FAKE_TOKEN}"
    telegram.allowed_updates = list(ALLOWED_UPDATES)

    result = run("webhook", "info")

    assert "https://example.org/hook/<token>" in result.stdout


def test_webhook_delete_keeps_pending_updates(telegram, run):
    telegram.webhook["url"] = "https://example.org/api/webhook"
    telegram.pending.append({"update_id": 7})

    result = run("webhook", "delete")

    assert result.exit_code == 0
    assert telegram.webhook["url"] == ""
    assert telegram.pending == [{"update_id": 7}]
    assert "1 pending updates kept" in result.stderr


def test_webhook_delete_drops_pending_updates_only_when_told(telegram, run):
    telegram.webhook["url"] = "https://example.org/api/webhook"
    telegram.pending.append({"update_id": 7})

    result = run("webhook", "delete", "--drop-pending-updates")

    assert result.exit_code == 0
    assert telegram.pending == []
    assert "DROPPED" in result.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["webhook"],
        ["webhook", "set"],
        ["webhook", "info"],
        ["webhook", "delete"],
        ["doctor"],
        ["poll"],
        ["import-export"],
    ],
)
def test_every_operator_command_has_help(command):
    result = CliRunner().invoke(main, [*command, "--help"])

    assert result.exit_code == 0
    assert "Usage:" in result.stdout
