"""The objects each Lambda function needs, built once per set of settings."""

from __future__ import annotations

import functools
import logging

from chalicelib.config import Settings
from chalicelib.ingest import Ingestor, Webhook
from chalicelib.secrets import SecretSource
from chalicelib.storage import Store, open_store


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
