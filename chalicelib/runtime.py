"""The objects each Lambda function needs, built once per set of settings."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping

from chalicelib.config import Settings
from chalicelib.errors import ConfigError
from chalicelib.ingest import Ingestor, Reply, Webhook
from chalicelib.secrets import SecretSource
from chalicelib.storage import Store, open_store

log = logging.getLogger(__name__)


def settings() -> Settings:
    """The settings of this process's environment (cheap: read on every call)."""
    return Settings.from_env()


@functools.lru_cache(maxsize=8)
def store(location: str) -> Store:
    """One store, and so one boto3 client, per location for the process."""
    return open_store(location)


@functools.lru_cache(maxsize=4)
def webhook(current: Settings) -> Webhook:
    """The webhook service for these settings, cached across warm invocations."""
    ingestor = Ingestor(current, store(current.raw))
    return Webhook(ingestor, SecretSource(current))


def handle_webhook(headers: Mapping[str, str], body: bytes) -> Reply:
    """Answer one ``POST /webhook`` with this process's settings.

    Settings that a deployed stage must not run with answer 500 (Telegram retries
    while someone fixes them) and are logged; nothing is stored.
    """
    try:
        return webhook(settings()).handle(headers, body)
    except ConfigError as error:
        log.error("webhook outcome=misconfigured error=%s", error)
        return Reply(500, {"ok": False, "error": "server misconfigured"})


def configure_logging() -> None:
    """INFO lines from tglake's modules; Lambda's root handler prints them."""
    logger = logging.getLogger("chalicelib")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    if not logging.getLogger().handlers and not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        logger.addHandler(handler)


def reset() -> None:
    """Forget every cached object (tests that switch moto on and off use this)."""
    store.cache_clear()
    webhook.cache_clear()
