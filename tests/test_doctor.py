"""``tglake doctor``: one line per check, a verdict, non-zero exit on a failure."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from chalicelib.cli import main
from chalicelib.telegram import ALLOWED_UPDATES
from tests.fixtures.fake_bot_api import FAKE_TOKEN, FakeBotApi, serve

GROUP = -1001234567890
BASIC = -4567


@pytest.fixture
def telegram(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBotApi]:
    """A healthy bot: privacy off, webhook set with every kind, the group known."""
    with serve(monkeypatch) as fake:
        fake.webhook["url"] = "https://example.org/api/webhook"
        fake.allowed_updates = list(ALLOWED_UPDATES)
        fake.add_chat(GROUP, "supergroup")
        yield fake


@pytest.fixture
def lake(folder_lake, monkeypatch):
    monkeypatch.setenv("TGLAKE_SECRET_TOKEN", "hook_secret-1")
    monkeypatch.setenv("TGLAKE_CHAT_IDS", str(GROUP))
    return folder_lake


def doctor(caplog: pytest.LogCaptureFixture, *args: str):
    caplog.set_level(logging.DEBUG)
    result = CliRunner().invoke(main, ["-v", "doctor", *args])
    for text in (result.stdout, result.stderr, caplog.text):
        assert FAKE_TOKEN not in text
    return result


def line(result, name: str) -> str:
    [found] = [row for row in result.stdout.splitlines() if f"  {name}:" in row]
    return found


def test_a_healthy_setup_passes_with_one_line_per_check(telegram, lake, caplog):
    result = doctor(caplog)

    assert result.exit_code == 0, result.output
    names = [
        row.split(":")[0].split(maxsplit=1)[1] for row in result.stdout.splitlines()
    ]
    assert names == [
        "raw store",
        "enriched store",
        "webhook secret",
        "bot token",
        f"chat {GROUP}",
        "privacy mode",
        "webhook",
    ]
    assert all(row.startswith("ok") for row in result.stdout.splitlines())
    assert result.stderr.strip().endswith(
        "healthy: 7 ok, 0 warnings, 0 failed, 0 skipped"
    )


def test_the_storage_probe_leaves_nothing_behind(telegram, lake, caplog):
    doctor(caplog)

    leftovers = [p for p in Path(lake.raw).rglob("*") if p.is_file()]
    leftovers += [p for p in Path(lake.enriched).rglob("*") if p.is_file()]
    assert leftovers == []


def test_an_unwritable_store_fails(telegram, lake, caplog, monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("TGLAKE_RAW", str(blocker / "raw"))

    result = doctor(caplog)

    assert result.exit_code == 1
    assert line(result, "raw store").startswith("fail")
    assert "cannot write" in line(result, "raw store")
    assert "UNHEALTHY" in result.stderr


def test_privacy_mode_on_is_explained_with_the_way_out(telegram, lake, caplog):
    telegram.me["can_read_all_group_messages"] = False

    result = doctor(caplog)

    assert result.exit_code == 1
    privacy = line(result, "privacy mode")
    assert privacy.startswith("fail")
    assert "BotFather" in privacy
    assert "Group Privacy" in privacy
    assert "remove the bot" in privacy
    assert str(GROUP) in privacy


def test_privacy_mode_does_not_matter_where_the_bot_is_admin(telegram, lake, caplog):
    telegram.me["can_read_all_group_messages"] = False
    telegram.add_chat(GROUP, "supergroup", admin=True)

    result = doctor(caplog)

    assert result.exit_code == 0, result.output
    assert "admin in every allowlisted group" in line(result, "privacy mode")


@pytest.mark.parametrize(
    ("chat_ids", "expected"),
    [
        (f"{GROUP},-1009999999999", "chat not found"),
        (f"{GROUP},0", "0 is not a chat id"),
    ],
)
def test_a_chat_id_the_bot_cannot_see_fails(
    telegram, lake, caplog, monkeypatch, chat_ids, expected
):
    monkeypatch.setenv("TGLAKE_CHAT_IDS", chat_ids)

    result = doctor(caplog)

    assert result.exit_code == 1
    assert expected in result.stdout


def test_telegram_not_answering_about_a_chat_fails_that_check_only(
    telegram, lake, caplog
):
    telegram.fail("getChat", requests.ConnectionError("connection reset"))

    result = doctor(caplog)

    assert result.exit_code == 1
    assert "cannot reach Telegram for getChat" in line(result, f"chat {GROUP}")
    assert line(result, "webhook").startswith("ok")


def test_a_migrated_group_id_names_its_new_id(telegram, lake, caplog, monkeypatch):
    monkeypatch.setenv("TGLAKE_CHAT_IDS", f"{GROUP},{BASIC}")
    telegram.migrated[BASIC] = GROUP

    result = doctor(caplog)

    assert line(result, f"chat {BASIC}").startswith("warn")
    assert f"upgraded to supergroup {GROUP}" in result.stdout


@pytest.mark.parametrize(
    ("arrange", "expected"),
    [
        (
            lambda fake: fake.pending.extend({"update_id": n} for n in range(101)),
            "101 updates pending",
        ),
        (
            lambda fake: setattr(
                fake, "last_error", (int(time.time()) - 30, "Timeout")
            ),
            "last error 30 s ago: Timeout",
        ),
        (
            lambda fake: setattr(fake, "allowed_updates", ["message"]),
            "allowed_updates lacks edited_message",
        ),
    ],
)
def test_an_unhealthy_webhook_fails(telegram, lake, caplog, arrange, expected):
    arrange(telegram)

    result = doctor(caplog)

    assert result.exit_code == 1
    assert expected in line(result, "webhook")


def test_no_webhook_is_a_warning_for_polling(telegram, lake, caplog):
    telegram.webhook["url"] = ""

    result = doctor(caplog)

    assert result.exit_code == 0
    assert line(result, "webhook").startswith("warn")
    assert "tglake poll" in line(result, "webhook")


def test_a_bad_token_fails_and_skips_the_webhook(telegram, lake, caplog, monkeypatch):
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "111:another-token-0000000000")

    result = doctor(caplog)

    assert result.exit_code == 1
    assert "Unauthorized (401)" in line(result, "bot token")
    assert "  webhook:" not in result.stdout


def test_without_a_token_the_telegram_checks_are_skipped(lake, caplog, monkeypatch):
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)

    result = doctor(caplog)

    assert result.exit_code == 0, result.output
    assert line(result, "bot").startswith("skip")
    assert "not checked online" in line(result, f"chat {GROUP}")


def test_a_local_lake_without_a_secret_is_warned(telegram, lake, caplog, monkeypatch):
    monkeypatch.delenv("TGLAKE_SECRET_TOKEN")

    result = doctor(caplog)

    assert line(result, "webhook secret").startswith("warn")


def test_a_secret_in_ssm_is_read(aws, telegram, lake, caplog, monkeypatch):
    import boto3

    boto3.client("ssm").put_parameter(
        Name="/tglake/secret", Value="from_ssm-1", Type="SecureString"
    )
    monkeypatch.setenv("TGLAKE_SECRET_PARAMETER", "/tglake/secret")
    monkeypatch.delenv("TGLAKE_SECRET_TOKEN")

    result = doctor(caplog)

    assert "1 secret(s) readable from SSM parameter /tglake/secret" in result.stdout
    assert "from_ssm-1" not in result.output


def test_a_missing_ssm_parameter_fails(aws, telegram, lake, caplog, monkeypatch):
    monkeypatch.setenv("TGLAKE_SECRET_PARAMETER", "/tglake/absent")

    result = doctor(caplog)

    assert result.exit_code == 1
    assert line(result, "webhook secret").startswith("fail")


def test_a_broken_configuration_is_one_failed_check(caplog, monkeypatch):
    monkeypatch.setenv("TGLAKE_TIMEZONE", "Mars/Olympus")

    result = doctor(caplog)

    assert result.exit_code == 1
    assert line(result, "configuration").startswith("fail")
    assert "TGLAKE_TIMEZONE" in result.stdout
