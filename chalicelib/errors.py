"""The project's small exception tree."""

from __future__ import annotations


class TglakeError(Exception):
    """Base class of every error tglake raises on purpose."""


class ConfigError(TglakeError):
    """A setting is missing or malformed; the message names the variable."""


class StorageError(TglakeError):
    """A read or write against the raw or enriched store failed."""

    def __init__(self, message: str, *, location: str, key: str | None = None) -> None:
        super().__init__(message)
        self.location = location
        self.key = key

    def __str__(self) -> str:
        where = f"{self.location}/{self.key}" if self.key else self.location
        return f"{self.args[0]} ({where})"


class ObjectNotFound(StorageError):
    """The key does not exist in the store."""


class TelegramError(TglakeError):
    """Telegram's Bot API refused a call or could not be reached."""


class QueryError(TglakeError):
    """A query could not be prepared or failed on its engine."""
