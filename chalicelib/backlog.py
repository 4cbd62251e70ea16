"""Telegram's webhook backlog as CloudWatch metrics, so that an alarm can watch it.

Pending updates live at Telegram, and only ``getWebhookInfo`` counts them. The
``watch_backlog`` function asks every 15 minutes, with the bot token from an SSM
SecureString (``TGLAKE_BOT_TOKEN_PARAMETER``), and publishes two metrics in the
``tglake`` namespace with a ``Stage`` dimension: ``PendingUpdateCount``, and
``SecondsSinceLastError`` once Telegram has reported a failed delivery. Without the
setting it does nothing, so a deployment may go without the token in Lambda.

boto3 and requests are imported only when a run needs them: ``app.py`` imports this
module, and the webhook's cold start must not pay for them. The clients are made per
run; four runs an hour do not justify keeping them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from chalicelib.config import Settings
from chalicelib.errors import ConfigError
from chalicelib.storage import error_code

log = logging.getLogger(__name__)

NAMESPACE = "tglake"
PENDING_METRIC = "PendingUpdateCount"
ERROR_AGE_METRIC = "SecondsSinceLastError"
# The function has 30 seconds: one quick retry, and no long rate-limit wait.
TELEGRAM_OPTIONS: dict[str, Any] = {
    "timeout": 8.0,
    "retries": 1,
    "rate_limit_retries": 1,
    "max_retry_after": 5,
}


@dataclass(frozen=True)
class Backlog:
    """What ``getWebhookInfo`` says about the deliveries waiting at Telegram."""

    pending: int
    seconds_since_last_error: int | None
    webhook_set: bool

    @classmethod
    def from_info(cls, info: dict[str, Any], *, now: float) -> Backlog:
        """Read a ``WebhookInfo`` object as of ``now`` (Unix seconds)."""
        last_error = info.get("last_error_date")
        age = None
        if isinstance(last_error, int) and last_error > 0:
            age = max(0, int(now - last_error))
        return cls(
            pending=int(info.get("pending_update_count") or 0),
            seconds_since_last_error=age,
            webhook_set=bool(info.get("url")),
        )

    def metric_data(self, stage: str) -> list[dict[str, Any]]:
        """The ``MetricData`` of one ``put_metric_data`` call, stamped on arrival."""
        dimensions = [{"Name": "Stage", "Value": stage}]
        data = [
            {"MetricName": PENDING_METRIC, "Value": self.pending, "Unit": "Count"},
        ]
        if self.seconds_since_last_error is not None:
            age = self.seconds_since_last_error
            data.append(
                {"MetricName": ERROR_AGE_METRIC, "Value": age, "Unit": "Seconds"}
            )
        return [{**datum, "Dimensions": dimensions} for datum in data]

    def summary(self) -> dict[str, object]:
        """A JSON-ready form, for the Lambda function's result."""
        return {
            "pending": self.pending,
            "seconds_since_last_error": self.seconds_since_last_error,
            "webhook_set": self.webhook_set,
        }


def watch_backlog(
    settings: Settings,
    *,
    ssm: Any = None,
    cloudwatch: Any = None,
    now: float | None = None,
) -> Backlog | None:
    """Read Telegram's backlog and publish it; None when no token parameter is set."""
    if not settings.bot_token_parameter:
        log.info("backlog skipped: TGLAKE_BOT_TOKEN_PARAMETER is not set")
        return None
    from chalicelib.telegram import BotApi

    api = BotApi(read_token(settings.bot_token_parameter, ssm=ssm), **TELEGRAM_OPTIONS)
    try:
        info = api.get_webhook_info()
    finally:
        api.close()
    backlog = Backlog.from_info(info, now=time.time() if now is None else now)
    cloudwatch = cloudwatch or _client("cloudwatch")
    cloudwatch.put_metric_data(
        Namespace=NAMESPACE, MetricData=backlog.metric_data(settings.stage)
    )
    log.info(
        "backlog stage=%s pending=%d seconds_since_last_error=%s webhook_set=%s",
        settings.stage,
        backlog.pending,
        backlog.seconds_since_last_error,
        backlog.webhook_set,
    )
    return backlog


def read_token(name: str, *, ssm: Any = None) -> str:
    """The bot token kept in the SecureString ``name``; it is never logged."""
    from botocore.exceptions import ClientError

    ssm = ssm or _client("ssm")
    try:
        reply = ssm.get_parameter(Name=name, WithDecryption=True)
    except ClientError as error:
        if error_code(error) != "ParameterNotFound":
            raise
        raise ConfigError(
            f"SSM parameter {name} (TGLAKE_BOT_TOKEN_PARAMETER) does not exist"
        ) from None
    token = reply["Parameter"]["Value"].strip()
    if not token:
        raise ConfigError(f"SSM parameter {name} (TGLAKE_BOT_TOKEN_PARAMETER) is empty")
    return token


def _client(service: str) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=3, read_timeout=5, retries={"max_attempts": 3})
    return boto3.client(service, config=config)
