"""The webhook secret: from configuration locally, from SSM Parameter Store deployed."""

from __future__ import annotations

import threading
import time
from typing import Any

from chalicelib.config import Settings, parse_secrets
from chalicelib.errors import ConfigError, StorageError

# A rotated secret reaches every warm Lambda within this many seconds.
CACHE_SECONDS = 300.0


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
                self._cached = self._fetch() + self._settings.secret_tokens
                self._fetched_at = time.monotonic()
            return self._cached

    def _fetch(self) -> tuple[str, ...]:
        from botocore.exceptions import BotoCoreError, ClientError

        name = self._settings.secret_parameter
        if self._client is None:
            import boto3

            self._client = boto3.client("ssm")
        try:
            reply = self._client.get_parameter(Name=name, WithDecryption=True)
        except (BotoCoreError, ClientError) as error:
            raise StorageError(
                f"cannot read the secret parameter: {type(error).__name__}",
                location="ssm",
                key=name,
            ) from error
        secrets = parse_secrets(reply["Parameter"]["Value"], name=f"SSM {name}")
        if not secrets:
            raise ConfigError(f"SSM parameter {name} is empty")
        return secrets
