"""Telegram Desktop's "Export chat history" (JSON) into the raw layer as Bot API
updates.

A bot never sees messages from before it joined; an export made by a member fills
that gap. Each exported message becomes one Bot-API-shaped update (``message``, or
``channel_post`` in a channel) stored through ``Ingestor.ingest``, so it lands under
the same day, key layout and chat allowlist as the webhook's updates.

What the export does differently, and what is done about it:

- It is not always valid JSON: control characters in text are written as ``\\xNN``.
  They are rewritten as ``\\u00NN`` before parsing.
- ``date`` is local time without a zone; ``date_unixtime`` (a string) is used.
- ``text`` is a string or a list of pieces (strings and ``{type, text}`` objects).
  The pieces are joined, and become ``entities`` with UTF-16 offsets as in the Bot
  API. With media the text is the ``caption``.
- Ids: a supergroup's or channel's export id lacks the ``-100`` prefix, a basic
  group's lacks the minus sign; ``from_id`` reads ``user123``, ``channel123`` or
  ``chat123``. A message sent on behalf of a chat gets the Bot API's fake sender
  (``GroupAnonymousBot`` for the group itself, ``Channel_Bot`` for a channel) and
  ``sender_chat``.
- Service messages are kept. Joins, leaves, pins, title and photo changes, group
  creation, auto-delete timers, topics, video chats and (when the old id is known)
  migrations become the Bot API's service fields. Every service message also keeps
  the export's action name under ``tglake_export_action``; an action without a Bot
  API field has only that key (its row's content type is ``other``).
- Media become the Bot API's content keys (``photo``, ``sticker``, ``voice``,
  ``video``, ``video_note``, ``animation``, ``audio``, ``document``, ``poll``,
  ``location``, ``venue``, ``contact``, ``game``, ``invoice``) with what the export
  knows (sizes, duration, MIME type); there are no ``file_id`` values. Exported users
  have no ``is_bot`` (the export does not say), and a forward keeps only the
  original sender's name (``forward_origin`` of type ``hidden_user``, date 0).
- An edited message carries ``edit_date`` (from ``edited_unixtime``) in a plain
  ``message`` update: the export holds the last version only.

Idempotence, and never merging two messages. Compaction keeps one row per
``(chat_id, message_id)``: the latest ``edit_date``, then an edit, then the higher
``update_id``. Imported updates have a NEGATIVE ``update_id``, and are serialised
deterministically (compact JSON, fixed key order), so importing the same export again
writes the same keys.

- Supergroups and channels: message ids are the chat's own, as in the Bot API. The
  update is ``update_id = -message_id``; where the webhook also received the message,
  the two merge into one row and the webhook's copy wins (unless the export holds a
  later edit).
- Basic groups and private chats: message ids are per account, so they cannot be
  matched with the bot's. A message is looked up by ``(chat_id, date, sender id,
  text or caption)`` in the raw updates the webhook already stored for that day; when
  found it is skipped. Otherwise it gets a synthetic id that no real message has:
  ``message_id = update_id = -(2**60 + h)``, where ``h`` is the first 60 bits of the
  SHA-256 of ``[chat_id, date, sender, text, content kind, n]`` and ``n`` counts
  earlier messages of the export with the same values (so two identical messages
  sent in the same second stay two rows). The same message exported by two members
  gets the same id. Replies and pins inside the export point at these ids.
- A supergroup that was once a basic group: the export includes the old group's
  history with ids shifted below zero (Telegram Desktop subtracts 10**9). Those
  messages are per account too. When the lake knows the migration (the allowlist's
  ``state/allowed-chats/<id>.json``) they are filed under the old group's id, as the
  webhook did; otherwise under the supergroup's.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from chalicelib import layout
from chalicelib.config import Settings
from chalicelib.errors import ObjectNotFound, TglakeError
from chalicelib.ingest import Ingestor, Outcome
from chalicelib.storage import Store
from chalicelib.updates import MESSAGE_KINDS, as_int, as_timestamp, decode, inspect

log = logging.getLogger(__name__)

SYNTHETIC_BASE = 1 << 60
# The Bot API's stand-ins for a message sent on behalf of a chat.
GROUP_ANONYMOUS_BOT = {
    "id": 1087968824,
    "is_bot": True,
    "first_name": "Group",
    "username": "GroupAnonymousBot",
}
CHANNEL_BOT = {
    "id": 136817688,
    "is_bot": True,
    "first_name": "Channel",
    "username": "Channel_Bot",
}
CHAT_TYPES = {
    "personal_chat": "private",
    "bot_chat": "private",
    "private_group": "group",
    "private_supergroup": "supergroup",
    "public_supergroup": "supergroup",
    "private_channel": "channel",
    "public_channel": "channel",
}
ENTITY_TYPES = {
    "mention": "mention",
    "hashtag": "hashtag",
    "cashtag": "cashtag",
    "bot_command": "bot_command",
    "link": "url",
    "email": "email",
    "phone": "phone_number",
    "bold": "bold",
    "italic": "italic",
    "underline": "underline",
    "strikethrough": "strikethrough",
    "spoiler": "spoiler",
    "code": "code",
    "pre": "pre",
    "text_link": "text_link",
    "mention_name": "text_mention",
    "custom_emoji": "custom_emoji",
    "blockquote": "blockquote",
}
MEDIA_TYPES = {
    "sticker": "sticker",
    "voice_message": "voice",
    "video_message": "video_note",
    "animation": "animation",
    "video_file": "video",
    "audio_file": "audio",
}
_BAD_ESCAPE = re.compile(rb"\\(\\|x([0-9A-Fa-f]{2}))")


class ExportError(TglakeError):
    """The file is not a Telegram Desktop chat export tglake can read."""


@dataclass(frozen=True)
class ExportedChat:
    """One chat of an export, with its Bot API id and type."""

    chat_id: int
    chat_type: str
    name: str | None
    messages: list[dict[str, Any]]

    @property
    def has_own_ids(self) -> bool:
        """Whether message ids are the chat's own (as the bot sees them)."""
        return self.chat_type in ("supergroup", "channel")


@dataclass
class ImportSummary:
    """What an import did."""

    chats: int = 0
    messages: int = 0
    written: int = 0
    unchanged: int = 0
    matched: int = 0
    ignored: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    days: set[date] = field(default_factory=set)

    def summary(self) -> str:
        skipped = ", ".join(f"{n} {why}" for why, n in sorted(self.skipped.items()))
        return (
            f"chats={self.chats} messages={self.messages} written={self.written} "
            f"unchanged={self.unchanged} already_received={self.matched} "
            f"ignored_chat={self.ignored} "
            f"skipped={sum(self.skipped.values())}"
            + (f" ({skipped})" if skipped else "")
            + f" days={len(self.days)}"
        )


def repair(raw: bytes) -> bytes:
    """Rewrite the exporter's ``\\xNN`` escapes as valid JSON ``\\u00NN``."""

    def fix(match: re.Match[bytes]) -> bytes:
        return b"\\u00" + match[2] if match[2] else match[0]

    return _BAD_ESCAPE.sub(fix, raw)


def read_export(path: Path) -> tuple[list[ExportedChat], int]:
    """The chats of a ``result.json`` (one chat, or every chat of a full export), and
    how many chats were left out because a bot can never be in them."""
    try:
        document = json.loads(repair(path.read_bytes()).decode("utf-8-sig"))
    except OSError as error:
        raise ExportError(f"cannot read {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ExportError(f"{path} is not UTF-8 text") from None
    except RecursionError:
        raise ExportError(f"{path} is nested too deeply to be an export") from None
    except json.JSONDecodeError as error:
        raise ExportError(
            f"{path} is not JSON (line {error.lineno}, column {error.colno}): "
            f"{error.msg}"
        ) from None
    if not isinstance(document, dict):
        raise ExportError(f"{path} is not a Telegram Desktop export")
    if isinstance(document.get("messages"), list):
        found = [document]
    else:
        found = [
            chat
            for section in ("chats", "left_chats")
            for chat in _dict(document.get(section)).get("list") or []
            if isinstance(chat, dict)
        ]
    if not found:
        raise ExportError(f"{path} holds no chat (expected a 'messages' list)")
    chats = [chat for chat in map(exported_chat, found) if chat is not None]
    return chats, len(found) - len(chats)


def exported_chat(chat: dict[str, Any]) -> ExportedChat | None:
    """A chat in the Bot API's terms, or None for one the bot can never be in."""
    kind = CHAT_TYPES.get(str(chat.get("type")))
    bare = chat.get("id")
    if kind is None or not isinstance(bare, int) or isinstance(bare, bool):
        log.warning("skipped export chat type=%s", chat.get("type"))
        return None
    chat_id = {
        "private": bare,
        "group": -bare,
        "supergroup": int(f"-100{bare}"),
        "channel": int(f"-100{bare}"),
    }[kind]
    if as_int(chat_id) is None:
        # No Bot API chat has such an id, and no table column could hold it.
        log.warning("skipped export chat type=%s reason=id_out_of_range", kind)
        return None
    messages = [m for m in chat.get("messages") or [] if isinstance(m, dict)]
    name = chat.get("name") if isinstance(chat.get("name"), str) else None
    return ExportedChat(chat_id, kind, name, messages)


def peer_id(value: Any) -> tuple[str, int] | None:
    """``user123`` -> ("user", 123); also ``channel123`` and ``chat123``."""
    if not isinstance(value, str):
        return None
    match = re.fullmatch(r"(user|channel|chat)(\d+)", value)
    return (match[1], int(match[2])) if match else None


def bot_peer_id(kind: str, bare: int) -> int:
    """A peer's id as the Bot API writes it."""
    if kind == "user":
        return bare
    return int(f"-100{bare}") if kind == "channel" else -bare


def joined_text(value: Any) -> tuple[str, list[dict[str, Any]]]:
    """An exported ``text`` as one string and its Bot API entities."""
    if isinstance(value, str):
        return value, []
    if not isinstance(value, list):
        return "", []
    parts, entities, offset = [], [], 0
    for piece in value:
        if isinstance(piece, str):
            text, kind = piece, "plain"
        elif isinstance(piece, dict) and isinstance(piece.get("text"), str):
            text, kind = piece["text"], str(piece.get("type"))
        else:
            continue
        length = len(text.encode("utf-16-le")) // 2
        entity = _entity(kind, piece, offset, length)
        if entity:
            entities.append(entity)
        parts.append(text)
        offset += length
    return "".join(parts), entities


def _entity(kind: str, piece: Any, offset: int, length: int) -> dict[str, Any] | None:
    bot_type = ENTITY_TYPES.get(kind)
    if bot_type is None or length == 0:
        return None
    entity: dict[str, Any] = {"offset": offset, "length": length, "type": bot_type}
    extra = piece if isinstance(piece, dict) else {}
    if bot_type == "text_link" and isinstance(extra.get("href"), str):
        entity["url"] = extra["href"]
    elif bot_type == "pre" and extra.get("language"):
        entity["language"] = str(extra["language"])
    elif bot_type == "text_mention" and isinstance(extra.get("user_id"), int):
        entity["user"] = {"id": extra["user_id"]}
    elif bot_type == "custom_emoji" and extra.get("document_id"):
        entity["custom_emoji_id"] = str(extra["document_id"])
    return entity


def match_key(message: dict[str, Any]) -> tuple[Any, ...]:
    """How a per-account message is recognised in webhook data."""
    chat = _dict(message.get("chat")).get("id")
    sender = _dict(message.get("from")).get("id")
    if sender is None:
        sender = _dict(message.get("sender_chat")).get("id")
    text = message.get("text") or message.get("caption") or None
    return chat, message.get("date"), sender, text


class Converter:
    """Turns one exported chat's messages into Bot API updates."""

    def __init__(self, chat: ExportedChat, *, migrated_from: int | None = None) -> None:
        self.chat = chat
        self.migrated_from = migrated_from
        self.ids: dict[int, int] = {}
        self._assign_ids()

    def is_per_account(self, message: dict[str, Any]) -> bool:
        """Whether the message's id is the exporting account's, not the chat's."""
        exported = message.get("id")
        own = self.chat.has_own_ids and isinstance(exported, int) and exported > 0
        return not own

    def chat_of(self, message: dict[str, Any]) -> dict[str, Any]:
        """The Bot API chat object a message belongs to."""
        chat_id, kind = self.chat.chat_id, self.chat.chat_type
        exported = message.get("id")
        if (
            kind == "supergroup"
            and isinstance(exported, int)
            and exported < 0
            and self.migrated_from is not None
        ):
            chat_id, kind = self.migrated_from, "group"
        chat: dict[str, Any] = {"id": chat_id, "type": kind}
        if self.chat.name:
            chat["first_name" if kind == "private" else "title"] = self.chat.name
        return chat

    def _assign_ids(self) -> None:
        seen: Counter[str] = Counter()
        for message in self.chat.messages:
            exported = message.get("id")
            if not isinstance(exported, int) or isinstance(exported, bool):
                continue
            if not self.is_per_account(message):
                self.ids[exported] = exported
                continue
            text, _ = joined_text(message.get("text"))
            seed = [
                self.chat_of(message)["id"],
                message.get("date_unixtime"),
                message.get("from_id") or message.get("actor_id"),
                text,
                _kind_marker(message),
            ]
            fingerprint = json.dumps(seed, ensure_ascii=False)
            seen[fingerprint] += 1
            digest = hashlib.sha256(
                json.dumps([*seed, seen[fingerprint]], ensure_ascii=False).encode(
                    "utf-8", "surrogatepass"
                )
            ).hexdigest()
            self.ids[exported] = -(SYNTHETIC_BASE + int(digest[:15], 16))

    def update(self, message: dict[str, Any]) -> dict[str, Any] | str:
        """The update of one exported message, or why it was skipped."""
        if message.get("type") not in ("message", "service"):
            return f"type {message.get('type')}"
        stamp = _unixtime(message.get("date_unixtime"))
        exported = message.get("id")
        if stamp is None:
            return "no date_unixtime"
        if exported not in self.ids:
            return "no id"
        message_id = self.ids[exported]
        chat = self.chat_of(message)
        body: dict[str, Any] = {"message_id": message_id}
        body.update(self._sender(message, chat))
        body["chat"] = chat
        body["date"] = stamp
        edited = _unixtime(message.get("edited_unixtime"))
        if edited is not None:
            body["edit_date"] = edited
        body.update(self._reply(message, chat))
        if message.get("forwarded_from") is not None:
            name = message.get("forwarded_from")
            body["forward_origin"] = {
                "type": "hidden_user",
                "sender_user_name": name if isinstance(name, str) else "",
                "date": 0,
            }
        if isinstance(message.get("author"), str):
            body["author_signature"] = message["author"]
        if message.get("type") == "service":
            body.update(self._service(message, chat))
        else:
            body.update(_content(message))
        kind = "channel_post" if chat["type"] == "channel" else "message"
        update_id = -message_id if message_id > 0 else message_id
        return {"update_id": update_id, kind: body}

    def _sender(self, message: dict[str, Any], chat: dict[str, Any]) -> dict[str, Any]:
        is_service = message.get("type") == "service"
        peer = peer_id(message.get("actor_id" if is_service else "from_id"))
        name = message.get("actor" if is_service else "from")
        if chat["type"] == "channel":
            return {"sender_chat": chat}
        if peer is None:
            return {}
        kind, bare = peer
        if kind == "user":
            return {"from": _user(bare, name)}
        sender_id = bot_peer_id(kind, bare)
        if sender_id == chat["id"]:
            return {"from": dict(GROUP_ANONYMOUS_BOT), "sender_chat": chat}
        sender_chat: dict[str, Any] = {
            "id": sender_id,
            "type": "channel" if kind == "channel" else "group",
        }
        if isinstance(name, str):
            sender_chat["title"] = name
        return {"from": dict(CHANNEL_BOT), "sender_chat": sender_chat}

    def target(self, exported: Any) -> int | None:
        """The Bot API id of a message another one points at (reply, pin)."""
        if not isinstance(exported, int) or isinstance(exported, bool):
            return None
        if exported in self.ids:
            return self.ids[exported]
        # An older message of a supergroup or channel keeps its own id.
        return exported if self.chat.has_own_ids and exported > 0 else None

    def _reply(self, message: dict[str, Any], chat: dict[str, Any]) -> dict[str, Any]:
        target = self.target(message.get("reply_to_message_id"))
        if target is None or message.get("reply_to_peer_id"):
            return {}
        return {"reply_to_message": {"message_id": target, "chat": chat, "date": 0}}

    def _service(self, message: dict[str, Any], chat: dict[str, Any]) -> dict[str, Any]:
        action = str(message.get("action") or message.get("type"))
        actor = peer_id(message.get("actor_id"))
        actor_name = message.get("actor")

        def member(name: Any) -> dict[str, Any]:
            if actor and actor[0] == "user" and name == actor_name:
                return _user(actor[1], name)
            return {"first_name": name} if isinstance(name, str) else {}

        members = [m for m in message.get("members") or [] if m is not None]
        fields: dict[str, Any] = {}
        if action == "create_group":
            fields["group_chat_created"] = True
        elif action == "create_channel":
            fields["channel_chat_created"] = True
        elif action == "edit_group_title" and isinstance(message.get("title"), str):
            fields["new_chat_title"] = message["title"]
        elif action == "edit_group_photo":
            fields["new_chat_photo"] = [_size(message)]
        elif action == "delete_group_photo":
            fields["delete_chat_photo"] = True
        elif action == "invite_members" and members:
            fields["new_chat_members"] = [member(name) for name in members]
        elif action in ("join_group_by_link", "join_group_by_request") and actor:
            fields["new_chat_members"] = [member(actor_name)]
        elif action == "remove_members" and members:
            fields["left_chat_member"] = member(members[0])
        elif action == "migrate_from_group" and self.migrated_from is not None:
            fields["migrate_from_chat_id"] = self.migrated_from
        elif action == "pin_message" and self.target(message.get("message_id")):
            pinned = self.target(message["message_id"])
            fields["pinned_message"] = {"message_id": pinned, "chat": chat, "date": 0}
        elif action == "set_messages_ttl" and isinstance(message.get("period"), int):
            timer = {"message_auto_delete_time": message["period"]}
            fields["message_auto_delete_timer_changed"] = timer
        elif action == "topic_created" and isinstance(message.get("title"), str):
            fields["forum_topic_created"] = {"name": message["title"]}
        elif action == "group_call":
            duration = message.get("duration")
            if isinstance(duration, int):
                fields["video_chat_ended"] = {"duration": duration}
            else:
                fields["video_chat_started"] = {}
        elif action == "group_call_scheduled" and isinstance(
            message.get("schedule_date"), int
        ):
            fields["video_chat_scheduled"] = {"start_date": message["schedule_date"]}
        elif action == "invite_to_group_call":
            users = [member(name) for name in members]
            fields["video_chat_participants_invited"] = {"users": users}
        fields["tglake_export_action"] = action
        return fields


def _content(message: dict[str, Any]) -> dict[str, Any]:
    text, entities = joined_text(message.get("text"))
    media = _media(message)
    fields: dict[str, Any] = {}
    label, entity_label = (
        ("caption", "caption_entities") if media else ("text", "entities")
    )
    if text:
        fields[label] = text
        if entities:
            fields[entity_label] = entities
    fields.update(media)
    return fields


def _media(message: dict[str, Any]) -> dict[str, Any]:
    info = _without_none(
        {
            "duration": message.get("duration_seconds"),
            "width": message.get("width"),
            "height": message.get("height"),
            "mime_type": message.get("mime_type"),
        }
    )
    if message.get("photo") is not None:
        return {"photo": [_size(message)]}
    kind = MEDIA_TYPES.get(str(message.get("media_type")))
    if kind == "sticker":
        emoji = message.get("sticker_emoji")
        return {"sticker": _without_none({"emoji": emoji, **info})}
    if kind == "audio":
        extra = {"performer": message.get("performer"), "title": message.get("title")}
        return {"audio": _without_none({**info, **extra})}
    if kind:
        return {kind: info}
    if message.get("file") is not None:
        name = message.get("file")
        if isinstance(name, str) and not name.startswith("("):
            info["file_name"] = name.rsplit("/", 1)[-1]
        return {"document": info}
    if isinstance(message.get("poll"), dict):
        return {"poll": _poll(message["poll"])}
    location = message.get("location_information")
    if isinstance(location, dict):
        point = _without_none(
            {
                "latitude": location.get("latitude"),
                "longitude": location.get("longitude"),
            }
        )
        if message.get("place_name") is not None:
            venue = {
                "location": point,
                "title": message.get("place_name"),
                "address": message.get("address") or "",
            }
            return {"venue": venue, "location": point}
        return {"location": point}
    if isinstance(message.get("contact_information"), dict):
        contact = message["contact_information"]
        keys = ("phone_number", "first_name", "last_name")
        return {"contact": _without_none({key: contact.get(key) for key in keys})}
    if message.get("game_title") is not None:
        game = {
            "title": message.get("game_title"),
            "description": message.get("game_description"),
        }
        return {"game": _without_none(game)}
    if isinstance(message.get("invoice_information"), dict):
        return {"invoice": message["invoice_information"]}
    return {}


def _poll(poll: dict[str, Any]) -> dict[str, Any]:
    answers = [a for a in poll.get("answers") or [] if isinstance(a, dict)]
    return {
        "question": poll.get("question") or "",
        "options": [
            {"text": a.get("text") or "", "voter_count": a.get("voters") or 0}
            for a in answers
        ],
        "total_voter_count": poll.get("total_voters") or 0,
        "is_closed": bool(poll.get("closed")),
    }


def _size(message: dict[str, Any]) -> dict[str, Any]:
    return _without_none(
        {"width": message.get("width"), "height": message.get("height")}
    )


def _user(user_id: int, name: Any) -> dict[str, Any]:
    user: dict[str, Any] = {"id": user_id}
    if isinstance(name, str):
        user["first_name"] = name
    return user


def _kind_marker(message: dict[str, Any]) -> str:
    if message.get("type") == "service":
        return f"service:{message.get('action')}"
    media = _media(message)
    return next(iter(media), "text")


def _unixtime(value: Any) -> int | None:
    # isdecimal, not isdigit: int() refuses "²". An implausible date counts as none.
    if isinstance(value, str) and value.isascii() and value.isdecimal():
        return as_timestamp(int(value))
    return as_timestamp(value)


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def serialise(update: dict[str, Any]) -> bytes:
    """The bytes an imported update is stored as: deterministic compact JSON."""
    text = json.dumps(update, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode()
    except UnicodeEncodeError:
        # A lone surrogate ("\ud800" in the export) has no UTF-8 form: U+FFFD.
        return (
            text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode()
        )


class Importer:
    """Writes the updates of exported chats into the raw layer."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.ingestor = Ingestor(settings, store)

    def updates(
        self, chat: ExportedChat, summary: ImportSummary
    ) -> Iterator[tuple[dict[str, Any], bool]]:
        """Each convertible message's update, and whether it must be matched."""
        converter = Converter(chat, migrated_from=self.migrated_from(chat.chat_id))
        for message in chat.messages:
            update = converter.update(message)
            if isinstance(update, str):
                summary.skipped[update] += 1
                continue
            yield update, converter.is_per_account(message)

    def migrated_from(self, chat_id: int) -> int | None:
        """The basic group a supergroup came from, when the lake saw the migration."""
        try:
            record = json.loads(self.store.get(layout.allowed_chat_key(chat_id)))
        except (ObjectNotFound, ValueError):
            return None
        old = _dict(record).get("migrated_from_chat_id")
        return old if isinstance(old, int) else None

    def received(self, chat_ids: set[int], days: set[date]) -> set[tuple[Any, ...]]:
        """Match keys of the messages the bot itself stored for these chats and days."""
        keys = []
        for day in sorted(days):
            for item in self.store.list(layout.day_prefix(day)):
                parsed = layout.parse_raw_key(item.key)
                if parsed and parsed.update_id is not None and parsed.update_id >= 0:
                    keys.append(item.key)
        found = set()
        with ThreadPoolExecutor(max_workers=self.settings.read_threads) as pool:
            for body in pool.map(self._get, keys):
                update = decode(body)
                info = inspect(update)
                if info and info.kind in MESSAGE_KINDS and info.chat_id in chat_ids:
                    found.add(match_key(update[info.kind]))
        return found

    def _get(self, key: str) -> bytes:
        try:
            return self.store.get(key)
        except ObjectNotFound:
            return b""

    def plan(
        self, chats: Iterable[ExportedChat], summary: ImportSummary
    ) -> list[bytes]:
        """The bodies to store, leaving out messages the webhook already received."""
        pending: list[tuple[dict[str, Any], bool]] = []
        for chat in chats:
            summary.chats += 1
            summary.messages += len(chat.messages)
            pending.extend(self.updates(chat, summary))
        checked = [update for update, per_account in pending if per_account]
        received = (
            self.received(
                {_message(update)["chat"]["id"] for update in checked},
                {self.day_of(update) for update in checked},
            )
            if checked
            else set()
        )
        bodies = []
        for update, per_account in pending:
            if per_account and match_key(_message(update)) in received:
                summary.matched += 1
                continue
            bodies.append(serialise(update))
        return bodies

    def day_of(self, update: dict[str, Any]) -> date:
        stamp = _message(update)["date"]
        return datetime.fromtimestamp(stamp, self.settings.zone).date()

    def _store(self, body: bytes) -> Outcome:
        return self.ingestor.ingest(body, skip_existing=True)

    def write(
        self,
        bodies: list[bytes],
        summary: ImportSummary,
        *,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """Store every body through the ingestor, in parallel."""
        with ThreadPoolExecutor(max_workers=self.settings.read_threads) as pool:
            for result in pool.map(self._store, bodies):
                if result.outcome == "stored" and result.key:
                    summary.written += 1
                    summary.days.add(layout.day_of_key(result.key))  # type: ignore[arg-type]
                elif result.outcome == "unchanged":
                    summary.unchanged += 1
                elif result.outcome == "ignored":
                    summary.ignored += 1
                else:
                    summary.skipped[result.outcome] += 1
                if progress:
                    progress(1)
        log.info("imported %s", summary.summary())


def _message(update: dict[str, Any]) -> dict[str, Any]:
    return update.get("message") or update["channel_post"]
