"""Settings, read from the environment in exactly one place."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from chalicelib.errors import ConfigError
from chalicelib.layout import RAW_PREFIX

LOCAL_STAGE = "dev"
SECRET_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,256}")
BOT_ID_PATTERN = re.compile(r"[A-Za-z0-9]{1,32}")
DEFAULT_MAX_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """Every setting of tglake; tests build it directly."""

    raw: str = "./data/raw"
    enriched: str = "./data/enriched"
    chat_ids: frozenset[int] = frozenset()
    allow_all_chats: bool = False
    secret_tokens: tuple[str, ...] = field(default=(), repr=False)
    secret_parameter: str = ""
    bot_token_parameter: str = ""
    timezone: str = "UTC"
    stage: str = LOCAL_STAGE
    bot_id: str = "0"
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    read_threads: int = 16
    athena_database: str = "tglake"
    athena_workgroup: str = "primary"
    athena_output: str = ""
    raw_retention_days: int = 0
    enriched_retention_days: int = 0
    bot_token: str = field(default="", repr=False)

    @property
    def is_deployed(self) -> bool:
        return self.stage != LOCAL_STAGE

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``TGLAKE_*`` variables, failing on the first bad one."""
        env = os.environ if environ is None else environ
        settings = cls(
            raw=_text(env, "TGLAKE_RAW", cls.raw),
            enriched=_text(env, "TGLAKE_ENRICHED", cls.enriched),
            chat_ids=_chat_ids(env),
            allow_all_chats=_flag(env, "TGLAKE_ALLOW_ALL_CHATS"),
            secret_tokens=_secrets(env, "TGLAKE_SECRET_TOKEN"),
            secret_parameter=_text(env, "TGLAKE_SECRET_PARAMETER", ""),
            bot_token_parameter=_text(env, "TGLAKE_BOT_TOKEN_PARAMETER", ""),
            timezone=_timezone(env),
            stage=_text(env, "TGLAKE_STAGE", LOCAL_STAGE),
            bot_id=_bot_id(env),
            max_body_bytes=_integer(env, "TGLAKE_MAX_BODY_BYTES", cls.max_body_bytes),
            read_threads=_integer(env, "TGLAKE_READ_THREADS", cls.read_threads),
            athena_database=_text(env, "TGLAKE_ATHENA_DATABASE", cls.athena_database),
            athena_workgroup=_text(
                env, "TGLAKE_ATHENA_WORKGROUP", cls.athena_workgroup
            ),
            athena_output=_text(env, "TGLAKE_ATHENA_OUTPUT", ""),
            raw_retention_days=_integer(env, "TGLAKE_RAW_RETENTION_DAYS", 0, low=0),
            enriched_retention_days=_integer(
                env, "TGLAKE_ENRICHED_RETENTION_DAYS", 0, low=0
            ),
            bot_token=env.get("TELEGRAM_BOT_TOKEN", "").strip(),
        )
        settings.check_layers()
        settings.check_deployable()
        return settings

    def check_layers(self) -> None:
        """Refuse one location for both layers: compaction would take raw objects
        for stale enriched files."""
        if _location(self.raw) == _location(self.enriched):
            raise ConfigError(
                f"TGLAKE_RAW and TGLAKE_ENRICHED are the same place ({self.raw}); "
                "give each layer its own folder or S3 prefix"
            )

    def check_deployable(self) -> None:
        """Refuse the settings a deployed stage must never run with."""
        if not self.is_deployed:
            return
        if not self.chat_ids and not self.allow_all_chats:
            raise ConfigError(
                "TGLAKE_CHAT_IDS is empty on a deployed stage; list the chats "
                "or set TGLAKE_ALLOW_ALL_CHATS=true to accept every chat"
            )
        if not self.secret_tokens and not self.secret_parameter:
            raise ConfigError(
                "a deployed stage needs TGLAKE_SECRET_PARAMETER (an SSM "
                "SecureString name) or TGLAKE_SECRET_TOKEN"
            )


def raw_event_source(environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """The bucket and key prefix the S3 hook listens to.

    Chalice needs them when app.py loads, before any handler runs; ``chalice deploy``
    loads app.py with the stage's environment. A folder gets a placeholder bucket.
    """
    env = os.environ if environ is None else environ
    raw = env.get("TGLAKE_RAW", "").strip() or Settings.raw
    if not raw.startswith("s3://"):
        return "tglake-local-raw", RAW_PREFIX
    bucket, _, prefix = raw[len("s3://") :].partition("/")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/{RAW_PREFIX}" if prefix else RAW_PREFIX


def parse_secrets(value: str, *, name: str) -> tuple[str, ...]:
    """Split a comma-separated list of webhook secrets and check each one."""
    secrets = tuple(part.strip() for part in value.split(",") if part.strip())
    for secret in secrets:
        if not SECRET_PATTERN.fullmatch(secret):
            raise ConfigError(
                f"{name} must be 1 to 256 characters of A-Z a-z 0-9 _ - "
                "(several separated by commas during a rotation)"
            )
    return secrets


def _text(env: Mapping[str, str], name: str, default: str) -> str:
    return env.get(name, "").strip() or default


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "").strip().lower()
    if value in ("", "0", "false", "no"):
        return False
    if value in ("1", "true", "yes"):
        return True
    raise ConfigError(f"{name} must be true or false, not {value!r}")


def _integer(env: Mapping[str, str], name: str, default: int, *, low: int = 1) -> int:
    value = env.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {value!r}") from None
    if number < low:
        raise ConfigError(f"{name} must be at least {low}, not {number}")
    return number


def _chat_ids(env: Mapping[str, str]) -> frozenset[int]:
    ids = set()
    for part in env.get("TGLAKE_CHAT_IDS", "").split(","):
        if not part.strip():
            continue
        try:
            ids.add(int(part))
        except ValueError:
            raise ConfigError(
                f"TGLAKE_CHAT_IDS must be comma-separated integers, not {part!r}"
            ) from None
    return frozenset(ids)


def _secrets(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return parse_secrets(env.get(name, ""), name=name)


def _location(value: str) -> str:
    """A layer's location in one spelling: ``s3://b/p/`` as ``s3://b/p``, a folder
    as its absolute path (read on every webhook request, so no file system calls)."""
    if value.startswith("s3://"):
        return value.rstrip("/")
    return os.path.abspath(value)


def _timezone(env: Mapping[str, str]) -> str:
    name = _text(env, "TGLAKE_TIMEZONE", Settings.timezone)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # OSError: a name that is a folder of the zone database ("Etc"), or too long.
        raise ConfigError(
            f"TGLAKE_TIMEZONE must be an IANA time zone name, not {name!r}"
        ) from None
    return name


def _bot_id(env: Mapping[str, str]) -> str:
    value = _text(env, "TGLAKE_BOT_ID", Settings.bot_id)
    if not BOT_ID_PATTERN.fullmatch(value):
        raise ConfigError(f"TGLAKE_BOT_ID must be letters and digits, not {value!r}")
    return value
