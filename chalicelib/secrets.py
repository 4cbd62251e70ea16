"""The webhook secret: from configuration locally, from SSM Parameter Store deployed."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from chalicelib.config import Settings, parse_secrets
from chalicelib.errors import ConfigError, StorageError
from chalicelib.storage import error_code

log = logging.getLogger(__name__)

# A rotated secret reaches every warm Lambda within this many seconds.
CACHE_SECONDS = 300.0
# While SSM fails, a warm Lambda keeps the secrets it has and asks again this often.
RETRY_SECONDS = 30.0


class SecretSource:
    """The secrets a request may carry; more than one during a rotation."""

    def __init__(self, settings: Settings, *, ssm_client: Any = None) -> None:
        self._settings = settings
        self._client = ssm_client
        self._cached: tuple[str, ...] = ()
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return bool(self._settings.secret_tokens or self._settings.secret_parameter)

    def secrets(self) -> tuple[str, ...]:
        """The accepted secrets, fetched from SSM at most every few minutes."""
        if not self._settings.secret_parameter:
            return self._settings.secret_tokens
        with self._lock:
            if time.monotonic() - self._fetched_at > CACHE_SECONDS:
                self._refresh()
            return self._cached

    def _refresh(self) -> None:
        try:
            self._cached = self._fetch() + self._settings.secret_tokens
        except StorageError as error:
            if not self._cached:
                raise
            # Answering 503 to every update because SSM hiccupped would be worse
            # than accepting the secrets that were valid a few minutes ago.
            log.warning("kept cached webhook secrets error=%s", error)
            self._fetched_at = time.monotonic() - CACHE_SECONDS + RETRY_SECONDS
            return
        self._fetched_at = time.monotonic()

    def _fetch(self) -> tuple[str, ...]:
        from botocore.exceptions import BotoCoreError, ClientError

        name = self._settings.secret_parameter
        if self._client is None:
            import boto3
            from botocore.config import Config

            # Short timeouts: API Gateway gives the whole request 29 seconds.
            config = Config(
                connect_timeout=3, read_timeout=5, retries={"max_attempts": 3}
            )
            self._client = boto3.client("ssm", config=config)
        try:
            reply = self._client.get_parameter(Name=name, WithDecryption=True)
        except (BotoCoreError, ClientError) as error:
            if error_code(error) == "ParameterNotFound":
                raise ConfigError(f"SSM parameter {name} does not exist") from None
            raise StorageError(
                f"cannot read the secret parameter: {error_code(error)}",
                location="ssm",
                key=name,
            ) from error
        secrets = parse_secrets(reply["Parameter"]["Value"], name=f"SSM {name}")
        if not secrets:
            raise ConfigError(f"SSM parameter {name} is empty")
        return secrets
