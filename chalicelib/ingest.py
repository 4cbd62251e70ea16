"""Ingestion: one update's bytes into the raw layer, and the webhook's answers.

The rules that keep Telegram's retries working for us:

- 2xx only after the bytes are durably stored; a storage failure answers 503 with
  ``Retry-After``, so Telegram delivers the update again.
- An update we do not keep (another chat, no chat at all under an allowlist) is
  answered 200: an error would make Telegram retry it for a day and hold back that
  chat's later updates.
- A body that is not an update but comes from an authenticated sender is kept under
  the quarantine prefix and answered 200; so is JSON that only Python reads (a byte
  order mark, ``NaN``, a lone surrogate), which would break the raw layer's readers.
- The key is derived from the bytes, so a redelivery overwrites itself.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from chalicelib import layout
from chalicelib.config import Settings
from chalicelib.errors import ObjectNotFound, StorageError
from chalicelib.secrets import SecretSource
from chalicelib.storage import Store
from chalicelib.updates import UpdateInfo, decode_portable, file_day, inspect

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
RETRY_AFTER_SECONDS = 10
# How long a warm Lambda trusts "this chat is not a migrated one" before asking the
# store again, and how many such answers it keeps.
UNKNOWN_CHAT_SECONDS = 60.0
UNKNOWN_CHAT_LIMIT = 10_000


@dataclass(frozen=True)
class Outcome:
    """What happened to one update."""

    outcome: str
    key: str | None = None
    info: UpdateInfo | None = None

    @property
    def is_stored(self) -> bool:
        """Whether the bytes are in the store now (stored, quarantined, unchanged)."""
        return self.outcome in ("stored", "quarantined", "unchanged")

    def facts(self) -> str:
        """The log line's key=value facts: ids, kind, key, outcome; never content."""
        info = self.info
        return (
            f"update_id={info.update_id if info else None} "
            f"chat_id={info.chat_id if info else None} "
            f"kind={info.kind if info else None} key={self.key} "
            f"outcome={self.outcome}"
        )


class Ingestor:
    """Files updates in the raw layer; the webhook and ``tglake poll`` share it."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self._migrated: set[int] = set()
        self._unknown: dict[int, float] = {}
        self._lock = threading.Lock()

    def ingest(
        self,
        body: bytes,
        *,
        arrived: datetime | None = None,
        skip_existing: bool = False,
    ) -> Outcome:
        """Store one update's exact bytes, or say why it was not kept.

        ``skip_existing`` (for bulk imports) leaves a key that is already stored
        alone and says ``unchanged``; the webhook always writes, since a write of the
        same bytes to the same key is already idempotent.
        """
        arrived = arrived or datetime.now(UTC)
        info = inspect(decode_portable(body))
        if info is None:
            day = arrived.astimezone(self.settings.zone).date()
            key = layout.quarantine_key(day, self.settings.bot_id, body)
            self.store.put(key, body)
            return Outcome("quarantined", key)
        if not self.is_allowed(info):
            return Outcome("ignored", info=info)
        day = file_day(info, self.settings.zone, arrived)
        key = layout.raw_key(day, self.settings.bot_id, info.update_id, body)
        if skip_existing and self.store.exists(key):
            return Outcome("unchanged", key, info)
        self.store.put(key, body)
        return Outcome("stored", key, info)

    def is_allowed(self, info: UpdateInfo) -> bool:
        """Whether the allowlist (and the migrations it has seen) admits the chat."""
        allowlist = self.settings.chat_ids
        if not allowlist:
            return True
        if info.chat_id is None:
            return False
        if info.chat_id in allowlist or self._is_migrated(info.chat_id):
            if info.migrate_to_chat_id is not None:
                self._remember_migration(info.chat_id, info.migrate_to_chat_id)
            return True
        source = info.migrate_from_chat_id
        # A new supergroup's first message can arrive before the old group's
        # service message has been stored, and on another warm Lambda.
        if source is not None and (source in allowlist or self._is_migrated(source)):
            self._remember_migration(source, info.chat_id)
            return True
        return False

    def _is_migrated(self, chat_id: int) -> bool:
        # Another warm Lambda may have written the marker: ask the store, but not
        # on every update of a busy chat that is simply not ours.
        now = time.monotonic()
        with self._lock:
            if chat_id in self._migrated:
                return True
            if now - self._unknown.get(chat_id, float("-inf")) < UNKNOWN_CHAT_SECONDS:
                return False
        try:
            self.store.get(layout.allowed_chat_key(chat_id))
        except ObjectNotFound:
            with self._lock:
                if len(self._unknown) >= UNKNOWN_CHAT_LIMIT:
                    self._unknown.clear()
                self._unknown[chat_id] = now
            return False
        with self._lock:
            self._migrated.add(chat_id)
        return True

    def _remember_migration(self, old: int, new: int) -> None:
        with self._lock:
            if new in self._migrated or new in self.settings.chat_ids:
                return
        record = {"chat_id": new, "migrated_from_chat_id": old}
        self.store.put(layout.allowed_chat_key(new), json.dumps(record).encode())
        with self._lock:
            self._migrated.add(new)
            self._unknown.pop(new, None)
        log.info("allowed migrated chat chat_id=%s from_chat_id=%s", new, old)


@dataclass(frozen=True)
class Reply:
    """An HTTP answer, shaped by app.py into a Chalice response."""

    status: int
    body: dict[str, object]
    headers: dict[str, str] = field(default_factory=dict)


class Webhook:
    """Checks a webhook request, ingests it, and chooses Telegram's answer."""

    def __init__(self, ingestor: Ingestor, secrets: SecretSource) -> None:
        self.ingestor = ingestor
        self.secrets = secrets

    def handle(self, headers: Mapping[str, str], body: bytes) -> Reply:
        """Answer one ``POST /webhook``."""
        size = len(body)
        limit = self.ingestor.settings.max_body_bytes
        try:
            if not self._is_authentic(headers):
                log.warning("webhook outcome=unauthorized bytes=%d", size)
                return Reply(401, {"ok": False, "error": "missing or wrong secret"})
            if size > limit:
                log.warning("webhook outcome=too_large bytes=%d limit=%d", size, limit)
                return Reply(413, {"ok": False, "error": f"body over {limit} bytes"})
            result = self.ingestor.ingest(body)
        except StorageError as error:
            log.error("webhook outcome=storage_error bytes=%d error=%s", size, error)
            return Reply(
                503,
                {"ok": False, "error": "storage unavailable, retry later"},
                {"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        log.info("webhook %s bytes=%d", result.facts(), size)
        return Reply(200, {"ok": True, "outcome": result.outcome})

    def _is_authentic(self, headers: Mapping[str, str]) -> bool:
        if not self.secrets.enabled:
            return True
        given = header(headers, SECRET_HEADER)
        if given is None:
            return False
        given_bytes = given.encode("utf-8", "replace")
        matches = [
            hmac.compare_digest(given_bytes, secret.encode())
            for secret in self.secrets.secrets()
        ]
        return any(matches)


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value, whatever the case of its name."""
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None
