"""Telegram's Bot API: one session, a timeout on every call, retries, a hidden token.

Retries come from two places. A 5xx answer or a dropped connection is retried by
urllib3's ``Retry`` on the session's adapter, with backoff. A 429 is retried by a
small loop here, because Telegram says how long to wait in the JSON body
(``parameters.retry_after``), which ``Retry`` cannot read; the loop also caps the
wait, which ``Retry`` would not do for a ``Retry-After`` header (so it is told to
ignore that header). Every method tglake calls is idempotent (reads, ``setWebhook``,
``deleteWebhook``, ``getUpdates`` with an offset), so retrying a POST is safe.

The token is part of every URL (``/bot<token>/getMe``), so it would show up in
requests' exception messages and in urllib3's debug log lines. Exceptions are rebuilt
from a redacted message, and a logging filter redacts urllib3's records.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError
from urllib3.exceptions import TimeoutError as TimeoutError_
from urllib3.util.retry import Retry

from chalicelib.config import Settings
from chalicelib.errors import ConfigError, TelegramError

log = logging.getLogger(__name__)

API_URL = "https://api.telegram.org"
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 15.0
# Seconds added to a long poll's own timeout before the read is given up.
LONG_POLL_MARGIN = 10.0
SERVER_RETRIES = 3
RATE_LIMIT_RETRIES = 3
MAX_RETRY_AFTER = 60
REDACTED = "<token>"

# Every kind tglake stores. chat_member and the reactions arrive only when listed.
ALLOWED_UPDATES = (
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "my_chat_member",
    "chat_member",
    "message_reaction",
    "message_reaction_count",
    "callback_query",
)

_TOKEN_SHAPE = re.compile(r"\d{3,}:[A-Za-z0-9_-]{10,}")
_URLLIB3_LOGGERS = (
    "urllib3.connectionpool",
    "urllib3.util.retry",
    "urllib3.connection",
)
_known_tokens: set[str] = set()
_filter_lock = threading.Lock()


class ApiError(TelegramError):
    """Telegram answered a call with ``ok: false``."""

    def __init__(
        self,
        method: str,
        code: int,
        description: str,
        *,
        retry_after: int | None = None,
        migrate_to_chat_id: int | None = None,
        hint: str = "",
    ) -> None:
        message = f"Telegram refused {method}: {description} ({code})"
        super().__init__(f"{message}; {hint}" if hint else message)
        self.method = method
        self.code = code
        self.description = description
        self.retry_after = retry_after
        self.migrate_to_chat_id = migrate_to_chat_id


def redact(text: str) -> str:
    """The text with every bot token tglake knows (or that looks like one) hidden."""
    for token in _known_tokens:
        text = text.replace(token, REDACTED)
    return _TOKEN_SHAPE.sub(REDACTED, text)


class _RedactTokens(logging.Filter):
    """Rewrites a log record whose message contains a token."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        hidden = redact(message)
        if hidden != message:
            record.msg, record.args = hidden, ()
        return True


def _guard_logs() -> None:
    with _filter_lock:
        for name in _URLLIB3_LOGGERS:
            logger = logging.getLogger(name)
            if not any(isinstance(item, _RedactTokens) for item in logger.filters):
                logger.addFilter(_RedactTokens())


class BotApi:
    """A client of one bot's Bot API; safe to print, log or put in an exception."""

    def __init__(
        self,
        token: str,
        *,
        base_url: str = API_URL,
        session: requests.Session | None = None,
        timeout: float = READ_TIMEOUT,
        retries: int = SERVER_RETRIES,
        backoff: float = 0.5,
        rate_limit_retries: int = RATE_LIMIT_RETRIES,
        max_retry_after: int = MAX_RETRY_AFTER,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not token:
            raise ConfigError("TELEGRAM_BOT_TOKEN is not set")
        _known_tokens.add(token)
        _guard_logs()
        self._token = token
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.rate_limit_retries = rate_limit_retries
        self.max_retry_after = max_retry_after
        self._sleep = sleep
        self.session = session or requests.Session()
        retry = Retry(
            total=retries,
            backoff_factor=backoff,
            status_forcelist=(500, 502, 503, 504),
            allowed_methods=None,
            raise_on_status=False,
            respect_retry_after_header=False,
        )
        adapter = HTTPAdapter(max_retries=retry)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> BotApi:
        """The client of the bot named by ``TELEGRAM_BOT_TOKEN``."""
        return cls(settings.bot_token, **options)

    def __repr__(self) -> str:
        return f"BotApi(base_url={self.base_url!r}, token={REDACTED!r})"

    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> Any:
        """Call one method and return its ``result``; raise TelegramError otherwise."""
        url = f"{self.base_url}/bot{self._token}/{method}"
        read_timeout = self.timeout if timeout is None else timeout
        for attempt in range(self.rate_limit_retries + 1):
            started = time.perf_counter()
            response = self._post(method, url, params or {}, read_timeout)
            payload = _payload(response)
            log.info(
                "telegram method=%s status=%d seconds=%.2f",
                method,
                response.status_code,
                time.perf_counter() - started,
            )
            if payload.get("ok") is True and "result" in payload:
                return payload["result"]
            error = _api_error(method, response, payload)
            if error.code != 429 or attempt == self.rate_limit_retries:
                raise error
            wait = error.retry_after if error.retry_after is not None else 1
            if wait > self.max_retry_after:
                raise error
            log.warning("telegram method=%s rate_limited retry_after=%d", method, wait)
            self._sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _post(
        self, method: str, url: str, params: dict[str, Any], read_timeout: float
    ) -> requests.Response:
        try:
            return self.session.post(
                url, json=params, timeout=(CONNECT_TIMEOUT, read_timeout)
            )
        except requests.Timeout:
            failure = f"Telegram did not answer {method} within {read_timeout:g} s"
        except requests.RequestException as error:
            if _is_timeout(error):
                failure = f"Telegram did not answer {method} within {read_timeout:g} s"
            else:
                failure = f"cannot reach Telegram for {method}: {redact(str(error))}"
        # Raised outside the handler so that no exception holding the URL (and so
        # the token) stays attached as __context__.
        raise TelegramError(failure)

    def get_me(self) -> dict[str, Any]:
        """The bot's own user, with ``can_read_all_group_messages``."""
        return self.call("getMe")

    def get_webhook_info(self) -> dict[str, Any]:
        """The webhook's URL, backlog, last error and allowed updates."""
        return self.call("getWebhookInfo")

    def set_webhook(
        self,
        url: str,
        *,
        secret_token: str | None,
        allowed_updates: Iterable[str] = ALLOWED_UPDATES,
        max_connections: int | None = None,
    ) -> bool:
        """Point Telegram at ``url``; pending updates are always kept."""
        params: dict[str, Any] = {
            "url": url,
            "allowed_updates": list(allowed_updates),
            "drop_pending_updates": False,
        }
        if secret_token:
            params["secret_token"] = secret_token
        if max_connections is not None:
            params["max_connections"] = max_connections
        return bool(self.call("setWebhook", params))

    def delete_webhook(self, *, drop_pending_updates: bool = False) -> bool:
        """Remove the webhook; pending updates are kept unless told otherwise."""
        params = {"drop_pending_updates": drop_pending_updates}
        return bool(self.call("deleteWebhook", params))

    def get_updates(
        self,
        *,
        offset: int | None,
        timeout: int,
        limit: int = 100,
        allowed_updates: Iterable[str] = ALLOWED_UPDATES,
    ) -> list[dict[str, Any]]:
        """One long poll: the updates from ``offset`` on (confirming those before)."""
        params: dict[str, Any] = {
            "timeout": timeout,
            "limit": limit,
            "allowed_updates": list(allowed_updates),
        }
        if offset is not None:
            params["offset"] = offset
        result = self.call("getUpdates", params, timeout=timeout + LONG_POLL_MARGIN)
        if not isinstance(result, list):
            raise TelegramError("getUpdates answered something other than a list")
        return result

    def get_chat(self, chat_id: int) -> dict[str, Any]:
        """A chat the bot can see."""
        return self.call("getChat", {"chat_id": chat_id})

    def get_chat_member(self, chat_id: int, user_id: int) -> dict[str, Any]:
        """A member of a chat, with their ``status``."""
        return self.call("getChatMember", {"chat_id": chat_id, "user_id": user_id})

    def close(self) -> None:
        self.session.close()


def _is_timeout(error: requests.RequestException) -> bool:
    # Once urllib3's retries are used up, a timeout arrives wrapped in MaxRetryError;
    # a refused connection is (for history's sake) a subclass of its timeout error.
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return isinstance(reason, TimeoutError_) and not isinstance(
        reason, NewConnectionError
    )


def _payload(response: requests.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def _api_error(
    method: str, response: requests.Response, payload: dict[str, Any]
) -> ApiError:
    code = payload.get("error_code")
    code = code if isinstance(code, int) else response.status_code
    description = payload.get("description")
    if not isinstance(description, str) or not description:
        description = f"HTTP {response.status_code} {response.reason or ''}".strip()
    description = redact(description)
    # Telegram answers 404 rather than 401 to a token that is not even well-formed.
    hint = "check TELEGRAM_BOT_TOKEN" if code in (401, 404) else ""
    parameters = payload.get("parameters")
    parameters = parameters if isinstance(parameters, dict) else {}
    retry_after = parameters.get("retry_after")
    header = response.headers.get("Retry-After", "")
    if not isinstance(retry_after, int) and header.isdigit():
        retry_after = int(header)
    migrate = parameters.get("migrate_to_chat_id")
    return ApiError(
        method,
        code,
        description,
        retry_after=retry_after if isinstance(retry_after, int) else None,
        migrate_to_chat_id=migrate if isinstance(migrate, int) else None,
        hint=hint,
    )
