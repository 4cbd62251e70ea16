"""``watch_backlog``: Telegram's pending updates as CloudWatch metrics, token hidden."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import responses

from chalicelib import backlog
from chalicelib.config import Settings
from chalicelib.errors import ConfigError, TelegramError
from tests.conftest import ROOT
from tests.fixtures.fake_bot_api import FAKE_TOKEN, FakeBotApi

PARAMETER = "/tglake/test/bot-token"
STAGE_PROD = [{"Name": "Stage", "Value": "prod"}]


@pytest.fixture
def ssm_token(aws: None) -> str:
    """The bot token stored as a SecureString in moto's SSM."""
    import boto3

    boto3.client("ssm").put_parameter(
        Name=PARAMETER, Value=FAKE_TOKEN, Type="SecureString"
    )
    return FAKE_TOKEN


@pytest.fixture
def telegram() -> Iterator[FakeBotApi]:
    """Telegram's Bot API, with the webhook set; no token in the environment."""
    fake = FakeBotApi()
    fake.webhook["url"] = "https://example.org/api/webhook"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake.install(mock)
        yield fake


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    # urllib3 logs each URL, token included, at DEBUG; botocore's DEBUG lines print
    # SSM's answer in full, which no deployed function enables, so they stay at INFO.
    caplog.set_level(logging.INFO)
    for name in ("chalicelib", "urllib3", "requests"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def settings(**changes: Any) -> Settings:
    return Settings(stage="prod", bot_token_parameter=PARAMETER, **changes)


def metrics() -> dict[str, list[dict[str, str]]]:
    """Metric name -> dimensions, for every metric moto holds in tglake's namespace."""
    import boto3

    listed = boto3.client("cloudwatch").list_metrics(Namespace=backlog.NAMESPACE)
    return {metric["MetricName"]: metric["Dimensions"] for metric in listed["Metrics"]}


def maximum(metric: str) -> float:
    import boto3

    now = datetime.now(UTC)
    answer = boto3.client("cloudwatch").get_metric_statistics(
        Namespace=backlog.NAMESPACE,
        MetricName=metric,
        Dimensions=STAGE_PROD,
        StartTime=now - timedelta(minutes=10),
        EndTime=now + timedelta(minutes=10),
        Period=60,
        Statistics=["Maximum"],
    )
    return max(point["Maximum"] for point in answer["Datapoints"])


def test_pending_updates_and_the_last_error_age_become_metrics_of_the_stage(
    ssm_token, telegram, logs
):
    telegram.pending = [{"update_id": n} for n in range(1, 8)]
    telegram.last_error = (1_700_000_000, "Wrong response from the webhook: 502")

    found = backlog.watch_backlog(settings(), now=1_700_000_300)

    assert found == backlog.Backlog(
        pending=7, seconds_since_last_error=300, webhook_set=True
    )
    assert metrics() == {
        "PendingUpdateCount": STAGE_PROD,
        "SecondsSinceLastError": STAGE_PROD,
    }
    assert maximum("PendingUpdateCount") == 7
    assert maximum("SecondsSinceLastError") == 300
    assert "backlog stage=prod pending=7 seconds_since_last_error=300" in logs.text
    assert FAKE_TOKEN not in logs.text


def test_no_error_age_is_published_before_telegram_reports_an_error(
    ssm_token, telegram, logs
):
    found = backlog.watch_backlog(settings())

    assert found is not None and found.pending == 0
    assert metrics() == {"PendingUpdateCount": STAGE_PROD}
    assert maximum("PendingUpdateCount") == 0


def test_without_a_token_parameter_it_logs_one_line_and_publishes_nothing(
    aws, telegram, logs
):
    found = backlog.watch_backlog(Settings(stage="prod"))

    assert found is None
    assert metrics() == {}
    ours = [r.getMessage() for r in logs.records if r.name.startswith("chalicelib")]
    assert ours == ["backlog skipped: TGLAKE_BOT_TOKEN_PARAMETER is not set"]


def test_a_missing_token_parameter_is_a_config_error_naming_it(aws, telegram):
    with pytest.raises(ConfigError, match=f"SSM parameter {PARAMETER} .* not exist"):
        backlog.watch_backlog(settings())

    assert metrics() == {}


def test_a_refused_token_fails_the_run_without_showing_the_token(
    ssm_token, telegram, logs
):
    telegram.token = "111111:another-bot_token-that-is-not-ours"

    with pytest.raises(TelegramError) as raised:
        backlog.watch_backlog(settings())

    assert "Unauthorized (401)" in str(raised.value)
    assert metrics() == {}
    assert FAKE_TOKEN not in str(raised.value) + logs.text


def test_an_unreachable_telegram_fails_the_run_without_showing_the_token(
    ssm_token, logs
):
    # No fake installed: responses refuses the call with a message holding the URL.
    with responses.RequestsMock(), pytest.raises(TelegramError) as raised:
        backlog.watch_backlog(settings())

    assert "cannot reach Telegram for getWebhookInfo" in str(raised.value)
    assert FAKE_TOKEN not in str(raised.value) + logs.text
    assert raised.value.__context__ is None


@pytest.mark.parametrize(
    ("info", "expected"),
    [
        ({}, (0, None, False)),
        ({"url": "https://x/webhook", "pending_update_count": 5}, (5, None, True)),
        (
            {"url": "", "pending_update_count": 2, "last_error_date": 900},
            (2, 100, False),
        ),
        # A clock running behind Telegram's never yields a negative age.
        ({"pending_update_count": 0, "last_error_date": 1200}, (0, 0, False)),
    ],
)
def test_webhook_info_reads_as_a_backlog(
    info: dict[str, Any], expected: tuple[int, int | None, bool]
):
    found = backlog.Backlog.from_info(info, now=1000)

    assert (
        found.pending,
        found.seconds_since_last_error,
        found.webhook_set,
    ) == expected


def test_the_scheduled_function_publishes_the_backlog_of_its_stage(
    ssm_token, telegram, client, monkeypatch
):
    monkeypatch.setenv("TGLAKE_BOT_TOKEN_PARAMETER", PARAMETER)
    telegram.pending = [{"update_id": 1}, {"update_id": 2}]
    event = client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
    )

    answer = client.lambda_.invoke("watch_backlog", event)

    assert answer.payload == {
        "pending": 2,
        "seconds_since_last_error": None,
        "webhook_set": True,
    }
    assert metrics() == {"PendingUpdateCount": [{"Name": "Stage", "Value": "dev"}]}


def test_importing_the_app_loads_neither_requests_nor_boto3():
    # Every function imports app.py; the webhook's cold start must not pay for them.
    code = "import sys, app; print(sorted({m.split('.')[0] for m in sys.modules}))"

    loaded = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    for heavy in ("requests", "boto3", "botocore", "pyarrow", "duckdb"):
        assert f"'{heavy}'" not in loaded
    assert "'chalicelib'" in loaded
