"""Long polling: ``getUpdates`` into the raw layer, for a machine without a public URL.

Each update goes through ``Ingestor.ingest``, so keys, the chat allowlist and
idempotence are the webhook's. Two differences are worth knowing:

- **Raw bytes.** ``getUpdates`` answers one JSON array, so an update's own bytes as
  Telegram would post them to a webhook do not exist. Each update is stored as
  ``json.dumps(update, ensure_ascii=False, separators=(",", ":"))`` in UTF-8: one line
  of compact JSON, keys in Telegram's order. The same update polled twice gives the
  same bytes and so the same key.
- **Offset.** Telegram forgets the updates before the ``offset`` of a call. The next
  offset is kept in the raw store (``layout.poll_offset_key``) and advanced only after
  a whole batch is stored, so a crash or Ctrl-C at any point loses nothing; at worst
  the last batch is fetched and stored again, which overwrites itself. ``update_id``
  restarts at a random value after a week without updates, so an offset older than
  ``OFFSET_MAX_AGE`` is not trusted: polling starts from Telegram's oldest pending
  update instead (again at worst a redelivery).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chalicelib import layout
from chalicelib.config import Settings
from chalicelib.errors import ObjectNotFound, TelegramError
from chalicelib.ingest import Ingestor, Outcome
from chalicelib.storage import Store
from chalicelib.telegram import ALLOWED_UPDATES, ApiError, BotApi

log = logging.getLogger(__name__)

OFFSET_MAX_AGE = 6 * 24 * 3600
WEBHOOK_ACTIVE = (
    "a webhook is set for this bot, so Telegram refuses getUpdates (409); "
    "run `tglake webhook delete` first (pending updates are kept)"
)


def serialise(update: dict[str, Any]) -> bytes:
    """The bytes a polled update is stored as (see the module docstring)."""
    return json.dumps(update, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass
class PollStats:
    """What a polling session did so far."""

    batches: int = 0
    updates: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    offset: int | None = None

    def summary(self) -> str:
        parts = [f"batches={self.batches}", f"updates={self.updates}"]
        parts += [f"{name}={n}" for name, n in sorted(self.outcomes.items())]
        parts.append(f"next_offset={self.offset}")
        return " ".join(parts)


class Poller:
    """Fetches batches of updates and files them like the webhook does."""

    def __init__(
        self,
        settings: Settings,
        api: BotApi,
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.api = api
        self.store = store
        self.ingestor = Ingestor(settings, store)
        self.clock = clock
        self.key = layout.poll_offset_key(settings.bot_id)

    def load_offset(self) -> int | None:
        """The stored next offset, or None when absent, unreadable or too old."""
        try:
            state = json.loads(self.store.get(self.key))
            offset, saved = int(state["offset"]), float(state["saved_at"])
        except ObjectNotFound:
            return None
        except (ValueError, KeyError, TypeError):
            log.warning("poll offset unreadable key=%s, starting fresh", self.key)
            return None
        if self.clock() - saved > OFFSET_MAX_AGE:
            log.warning("poll offset older than %d s, starting fresh", OFFSET_MAX_AGE)
            return None
        return offset

    def save_offset(self, offset: int) -> None:
        """Remember the next offset (only once its batch is stored)."""
        state = {"offset": offset, "saved_at": self.clock()}
        self.store.put(self.key, json.dumps(state).encode())

    def fetch(self, offset: int | None, *, timeout: int, limit: int) -> list[Any]:
        """One ``getUpdates`` call; a 409 becomes the advice to delete the webhook."""
        try:
            return self.api.get_updates(
                offset=offset,
                timeout=timeout,
                limit=limit,
                allowed_updates=ALLOWED_UPDATES,
            )
        except ApiError as error:
            if error.code == 409:
                raise TelegramError(WEBHOOK_ACTIVE) from None
            raise

    def store_batch(self, updates: list[Any]) -> list[Outcome]:
        """Ingest every update of a batch, in order."""
        outcomes = []
        for update in updates:
            result = self.ingestor.ingest(serialise(update))
            log.info("poll %s", result.facts())
            outcomes.append(result)
        return outcomes

    def run(
        self,
        *,
        timeout: int = 30,
        limit: int = 100,
        once: bool = False,
        stats: PollStats | None = None,
        on_batch: Callable[[PollStats], None] | None = None,
    ) -> PollStats:
        """Poll until interrupted (or one batch with ``once``); returns the stats."""
        stats = stats if stats is not None else PollStats()
        stats.offset = self.load_offset()
        while True:
            updates = self.fetch(stats.offset, timeout=timeout, limit=limit)
            outcomes = self.store_batch(updates)
            ids = [u["update_id"] for u in updates if _has_id(u)]
            if ids:
                stats.offset = max(ids) + 1
                self.save_offset(stats.offset)
            stats.batches += 1
            stats.updates += len(updates)
            for result in outcomes:
                stats.outcomes[result.outcome] = (
                    stats.outcomes.get(result.outcome, 0) + 1
                )
            if on_batch:
                on_batch(stats)
            if once:
                return stats


def _has_id(update: Any) -> bool:
    value = update.get("update_id") if isinstance(update, dict) else None
    return isinstance(value, int) and not isinstance(value, bool)
