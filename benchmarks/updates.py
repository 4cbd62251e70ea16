"""Realistic, seeded Telegram updates for one day, as one-line JSON bytes.

The mix follows a busy Portuguese-speaking group: mostly text (accents, emoji, some
replies and links), photos with captions, stickers, voice notes, documents, edits of
earlier messages, reactions, members joining and leaving, and redeliveries (the exact
bytes of an earlier update sent again, as Telegram does after a failed answer).
Every name, id and text is invented; the same seed gives the same bytes.

Run ``python -m benchmarks.updates --count 5`` to see a few.
"""

from __future__ import annotations

import argparse
import json
import random
import string
import sys
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

DAY = date(2024, 10, 24)
ZONE = "America/Sao_Paulo"
SEED = 20241024
FIRST_UPDATE_ID = 731_000_000

# (kind, weight) of each update; "redelivery" repeats earlier bytes.
MIX = (
    ("text", 58),
    ("reply", 10),
    ("photo", 8),
    ("sticker", 6),
    ("voice", 3),
    ("document", 2),
    ("edit", 6),
    ("reaction", 3),
    ("join", 1),
    ("leave", 1),
    ("redelivery", 2),
)

FIRST_NAMES = (
    "Ana", "Bruno", "Camila", "Diego", "Eduarda", "Felipe", "Gabriela", "Heitor",
    "Isabela", "João", "Larissa", "Márcio", "Natália", "Otávio", "Patrícia", "Rafael",
    "Sofia", "Tiago", "Úrsula", "Vitória", "Wagner", "Yasmin", "Zé", "Conceição",
)  # fmt: skip
LAST_NAMES = ("Silva", "Sousa", "Araújo", "Gonçalves", "Lima", "Conceição", "Brandão")
OPENERS = (
    "Bom dia, pessoal!", "Alguém sabe", "Olha só", "Gente,", "Então,", "Valeu!",
    "Pergunta rápida:", "Concordo", "Não acho que", "Obrigado pela ajuda",
    "Boa tarde!", "Já tentei isso e", "Sério?", "Atenção:", "Ótima ideia,",
)  # fmt: skip
PHRASES = (
    "como faço pra configurar o ambiente", "a aula de hoje foi ótima",
    "o exercício 3 não está funcionando", "vou compartilhar o código depois",
    "a reunião começa às 19h", "alguém já usou pandas com parquet",
    "o notebook travou de novo", "é só reiniciar o kernel", "não entendi a questão",
    "a função retorna None", "amanhã tem prova?", "o link da gravação está no drive",
    "preciso de ajuda com o SQL", "essa consulta demora muito", "funcionou aqui também",
    "qual versão do python vocês usam", "tô sem café ainda", "isso é uma ótima notícia",
    "a gente pode marcar uma call", "o prazo é até sexta-feira",
)  # fmt: skip
EMOJI = ("😂", "👍", "🙏", "🔥", "😅", "❤️", "🤔", "🎉", "☕", "🚀", "👀", "😍")
CAPTIONS = (
    "Olha o resultado 📊", "Print do erro", "Nosso grupo de estudos ❤️",
    "Slide da aula", "Café da manhã ☕", "Gráfico de vendas por região",
)  # fmt: skip
LINK = "https://exemplo.com.br/aula"
STICKER_SETS = ("GatinhosFofos", "MemesBR", "AnimaisDaFloresta")
REACTIONS = ("👍", "❤", "🔥", "😁", "🎉", "🤔")
DOCUMENTS = (
    ("relatório-final.pdf", "application/pdf"),
    ("planilha_notas.xlsx", "application/vnd.ms-excel"),
    ("exercícios.zip", "application/zip"),
)


@dataclass(frozen=True)
class Chat:
    """A made-up chat: a supergroup or a basic group."""

    id: int
    title: str
    type: str


CHATS = (
    Chat(-1001987654321, "Turma de Dados 2024 📊", "supergroup"),
    Chat(-1001876543210, "Grupo de Estudos — Python", "supergroup"),
    Chat(-4512345678, "Projeto Final 🚀", "group"),
)


def day_updates(
    count: int, *, day: date = DAY, zone: str = ZONE, seed: int = SEED
) -> list[bytes]:
    """``count`` updates of one day in ``zone``, as the bytes Telegram posts."""
    return list(iter_updates(count, day=day, zone=zone, seed=seed))


def iter_updates(
    count: int, *, day: date = DAY, zone: str = ZONE, seed: int = SEED
) -> Iterator[bytes]:
    """The same updates as ``day_updates``, one at a time."""
    return _Generator(day, ZoneInfo(zone), seed).run(count)


class _Generator:
    """The state one day of a group chat needs: message ids, recent messages."""

    def __init__(self, day: date, zone: ZoneInfo, seed: int) -> None:
        self.rng = random.Random(seed)
        self.start = int(datetime.combine(day, time(0, 0), zone).timestamp())
        self.update_id = FIRST_UPDATE_ID + self.rng.randrange(1000)
        self.message_ids = {chat.id: self.rng.randrange(1000, 90_000) for chat in CHATS}
        self.users = [self._user(index) for index in range(40)]
        self.recent: deque[dict] = deque(maxlen=300)
        self.sent: deque[bytes] = deque(maxlen=200)
        kinds, weights = zip(*MIX, strict=True)
        self.kinds = kinds
        self.weights = weights

    def run(self, count: int) -> Iterator[bytes]:
        seconds = sorted(self.rng.randrange(86_400 - 600) for _ in range(count))
        for offset in seconds:
            kind = self.rng.choices(self.kinds, self.weights)[0]
            if kind == "redelivery" and self.sent:
                yield self.rng.choice(self.sent)
                continue
            if kind in ("edit", "reaction") and not self.recent:
                kind = "text"
            if kind == "redelivery":
                kind = "text"
            body = self._encode(self._update(kind, self.start + offset))
            self.sent.append(body)
            yield body

    def _update(self, kind: str, when: int) -> dict:
        self.update_id += 1
        if kind == "edit":
            return {"update_id": self.update_id, "edited_message": self._edit(when)}
        if kind == "reaction":
            return {"update_id": self.update_id, "message_reaction": self._react(when)}
        message = self._message(kind, when)
        if "text" in message:
            self.recent.append(message)
        return {"update_id": self.update_id, "message": message}

    def _message(self, kind: str, when: int) -> dict:
        chat = self.rng.choices(CHATS, (6, 3, 1))[0]
        self.message_ids[chat.id] += 1
        sender = self.rng.choice(self.users)
        message: dict = {
            "message_id": self.message_ids[chat.id],
            "from": sender,
            "chat": {"id": chat.id, "title": chat.title, "type": chat.type},
            "date": when,
        }
        if kind in ("text", "reply"):
            message["text"] = self._text()
            if self.rng.random() < 0.05:
                message["text"], message["entities"] = _with_link(message["text"])
        if kind == "reply":
            original = self._recent_in(chat.id)
            if original is not None:
                message["reply_to_message"] = original
        elif kind == "photo":
            message["photo"] = [self._photo_size(w, h) for w, h in _PHOTO_SIZES]
            message["caption"] = self.rng.choice(CAPTIONS)
        elif kind == "sticker":
            message["sticker"] = self._sticker()
        elif kind == "voice":
            message["voice"] = {
                **self._file(),
                "duration": self.rng.randrange(2, 90),
                "mime_type": "audio/ogg",
            }
        elif kind == "document":
            name, mime = self.rng.choice(DOCUMENTS)
            message["document"] = {**self._file(), "file_name": name, "mime_type": mime}
        elif kind == "join":
            member = self._user(self.rng.randrange(40, 400))
            message["new_chat_participant"] = member
            message["new_chat_member"] = member
            message["new_chat_members"] = [member]
        elif kind == "leave":
            member = self.rng.choice(self.users)
            message["left_chat_participant"] = member
            message["left_chat_member"] = member
        return message

    def _edit(self, when: int) -> dict:
        original = self.rng.choice(self.recent)
        edited = {key: value for key, value in original.items() if key != "entities"}
        edited["text"] = f"{original['text']} (editado: {self.rng.choice(PHRASES)})"
        edited["edit_date"] = max(when, original["date"] + 1)
        return edited

    def _react(self, when: int) -> dict:
        target = self.rng.choice(self.recent)
        return {
            "chat": target["chat"],
            "message_id": target["message_id"],
            "user": self.rng.choice(self.users),
            "date": max(when, target["date"]),
            "old_reaction": [],
            "new_reaction": [{"type": "emoji", "emoji": self.rng.choice(REACTIONS)}],
        }

    def _recent_in(self, chat_id: int) -> dict | None:
        for message in reversed(self.recent):
            if message["chat"]["id"] == chat_id:
                return {k: v for k, v in message.items() if k != "reply_to_message"}
        return None

    def _text(self) -> str:
        parts = [self.rng.choice(OPENERS), self.rng.choice(PHRASES)]
        if self.rng.random() < 0.4:
            parts.append(self.rng.choice(EMOJI) * self.rng.randrange(1, 4))
        if self.rng.random() < 0.1:
            return self.rng.choice(EMOJI)
        return " ".join(parts)

    def _user(self, index: int) -> dict:
        first = FIRST_NAMES[index % len(FIRST_NAMES)]
        user: dict = {
            "id": 5_100_000_000 + index * 7919,
            "is_bot": False,
            "first_name": first,
            "language_code": "pt-br",
        }
        if index % 3 == 0:
            user["last_name"] = LAST_NAMES[index % len(LAST_NAMES)]
        if index % 2 == 0:
            user["username"] = f"estudante_{index:03d}"
        return user

    def _file(self) -> dict:
        return {
            "file_id": self._token(72),
            "file_unique_id": self._token(16),
            "file_size": self.rng.randrange(2_000, 900_000),
        }

    def _photo_size(self, width: int, height: int) -> dict:
        return {**self._file(), "width": width, "height": height}

    def _sticker(self) -> dict:
        return {
            **self._file(),
            "width": 512,
            "height": 512,
            "emoji": self.rng.choice(EMOJI),
            "set_name": self.rng.choice(STICKER_SETS),
            "is_animated": False,
            "is_video": self.rng.random() < 0.3,
            "type": "regular",
            "thumbnail": self._photo_size(128, 128),
        }

    def _token(self, length: int) -> str:
        return "".join(self.rng.choices(_TOKEN_CHARS, k=length))

    @staticmethod
    def _encode(update: dict) -> bytes:
        return json.dumps(update, ensure_ascii=False, separators=(",", ":")).encode()


def _with_link(text: str) -> tuple[str, list[dict]]:
    # Entity offsets count UTF-16 code units, so an emoji counts twice.
    prefix = f"{text} "
    offset = len(prefix.encode("utf-16-le")) // 2
    entity = {"offset": offset, "length": len(LINK), "type": "url"}
    return prefix + LINK, [entity]


_PHOTO_SIZES = ((90, 51), (320, 180), (800, 450), (1280, 720))
_TOKEN_CHARS = string.ascii_letters + string.digits + "-_"


def main(argv: list[str] | None = None) -> None:
    """Print generated updates, one JSON object per line."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--count", type=int, default=10, help="how many updates")
    parser.add_argument("--seed", type=int, default=SEED, help="random seed")
    args = parser.parse_args(argv)
    for body in iter_updates(args.count, seed=args.seed):
        sys.stdout.buffer.write(body + b"\n")


if __name__ == "__main__":
    main()
