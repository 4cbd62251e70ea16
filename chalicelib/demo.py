"""A seeded, realistic group conversation, and the demo that runs it end to end.

The conversation is made up: a Portuguese-speaking programming group in
America/Sao_Paulo over six days, with questions answered in reply threads and some
left unanswered, photos with captions, a sticker, a voice note, an edit, members
joining and leaving, messages just before and after local midnight, and one update
that Telegram delivers twice. Every name and id is invented.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from chalicelib import layout
from chalicelib.compaction import DayResult
from chalicelib.config import Settings

DEMO_ZONE = "America/Sao_Paulo"
DEMO_SECRET = "tglake-demo-secret"
FIRST_DAY = date(2026, 3, 4)
DAYS = 6
CHAT = {"id": -1001900000001, "title": "Python Brasil (demo)", "type": "supergroup"}
USERS = [
    {"id": 7100000001, "first_name": "Ana", "last_name": "Lima", "username": "ana_dev"},
    {"id": 7100000002, "first_name": "Bruno", "username": "bruno_py"},
    {"id": 7100000003, "first_name": "Célia", "last_name": "Araújo"},
    {"id": 7100000004, "first_name": "Diego", "username": "diego_dados"},
    {"id": 7100000005, "first_name": "Érica", "last_name": "Nunes"},
    {"id": 7100000006, "first_name": "Fábio", "username": "fabio_ops"},
]
NEWCOMER = {"id": 7100000007, "first_name": "Gabriela", "username": "gabi_novata"}
QUESTIONS = [
    "Alguém sabe como instalar o pandas no Windows?",
    "Qual a diferença entre lista e tupla em Python?",
    "Dúvida: como faço deploy de uma função no AWS Lambda?",
    "Como ler um arquivo parquet com o #duckdb?",
    "Alguém já usou o Athena com partition projection?",
    "Qual biblioteca vocês recomendam para gráficos?",
    "duvida rápida: como criar um ambiente virtual?",
    "Como faço para ler um CSV com acentuação errada?",
    "Vale a pena aprender FastAPI ou Flask primeiro?",
    "Como agendar um script para rodar todo dia?",
]
ANSWERS = [
    "Usa o pip dentro de um ambiente virtual que dá certo 👍",
    "Tupla é imutável, lista não. Simples assim!",
    "Eu uso o Chalice, o deploy é um comando só.",
    "Dá uma olhada na documentação, tem um exemplo ótimo.",
    "Já usei sim, economiza muito na consulta 💸",
    "Eu gosto do matplotlib, mas o plotly é bonito também.",
    "python -m venv .venv e depois ativa.",
    "Tenta abrir com encoding='latin-1'.",
    "Comecei pelo Flask, mas hoje prefiro FastAPI 🚀",
    "Um cron resolve, ou o EventBridge se estiver na AWS.",
]
CHATTER = [
    "Bom dia, pessoal! ☀️",
    "Valeu pela ajuda! 🙏",
    "Alguém vai no meetup de sábado?",
    "Hoje o código não quer funcionar 😅",
    "Compartilhando um artigo muito bom sobre #python e #dados",
    "Boa noite a todos 🌙",
    "Muito obrigado, funcionou!",
    "Estou estudando #sql essa semana",
    "Café e código ☕💻",
    "Alguém tem material sobre testes automatizados?",
]
PHOTO_CAPTIONS = [
    "Olha o gráfico que eu fiz com os dados do grupo 📊",
    "Meu setup novo 😍",
    None,
]


@dataclass
class Conversation:
    """Updates in delivery order, with a clock of ids."""

    zone: ZoneInfo
    rng: random.Random
    updates: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    next_message_id: int = 1200
    next_update_id: int = 640000000

    def post(self, sender: dict[str, Any], when: datetime, **content: Any) -> dict:
        message = {
            "message_id": self.next_message_id,
            "from": {"is_bot": False, **sender, "language_code": "pt-br"},
            "chat": dict(CHAT),
            "date": int(when.timestamp()),
            **content,
        }
        self.next_message_id += 1
        self.deliver(int(when.timestamp()), "message", message)
        return message

    def deliver(self, at: int, kind: str, payload: dict[str, Any]) -> None:
        self.updates.append((at, {kind: payload}))


def generate(seed: int = 7) -> list[bytes]:
    """The demo's updates as Telegram sends them: one line of JSON each."""
    talk = Conversation(ZoneInfo(DEMO_ZONE), random.Random(seed))
    for offset in range(DAYS):
        _day(talk, FIRST_DAY + timedelta(days=offset), offset)
    talk.updates.sort(key=lambda item: item[0])
    bodies = []
    for _, update in talk.updates:
        update = {"update_id": talk.next_update_id, **update}
        talk.next_update_id += 1
        bodies.append(json.dumps(update, ensure_ascii=False).encode())
    # Telegram timed out waiting for one answer and delivered the update again.
    bodies.insert(len(bodies) // 2 + 1, bodies[len(bodies) // 2])
    return bodies


def _day(talk: Conversation, day: date, offset: int) -> None:
    rng = talk.rng

    def at(hour: int, minute: int) -> datetime:
        return datetime.combine(day, time(hour, minute), talk.zone)

    talk.post(rng.choice(USERS), at(8, rng.randrange(60)), text=CHATTER[0])
    if offset == 0:
        joined = at(9, 5)
        talk.post(NEWCOMER, joined, new_chat_members=[dict(NEWCOMER, is_bot=False)])
        talk.post(NEWCOMER, joined + timedelta(minutes=2), text="Oi! Sou nova aqui 👋")
    for _ in range(rng.randint(3, 5)):
        _thread(talk, at(rng.choice([9, 10, 11, 14, 19, 20, 21]), rng.randrange(60)))
    for _ in range(rng.randint(4, 8)):
        when = at(rng.choice([10, 12, 13, 15, 18, 20, 22]), rng.randrange(60))
        talk.post(rng.choice(USERS), when, text=rng.choice(CHATTER))
    talk.post(
        rng.choice(USERS),
        at(16, rng.randrange(60)),
        photo=[{"file_id": f"demo-photo-{offset}", "width": 800, "height": 600}],
        **_caption(rng.choice(PHOTO_CAPTIONS)),
    )
    if offset == 1:
        talk.post(
            USERS[1], at(17, 3), sticker={"file_id": "demo-sticker", "emoji": "😂"}
        )
        talk.post(USERS[2], at(17, 9), voice={"file_id": "demo-voice", "duration": 14})
        talk.post(USERS[3], at(18, 0), text="/ajuda@demo_bot")
        # Just before local midnight: already the next day in UTC.
        talk.post(USERS[4], at(23, 50), text="Alguém acordado? Tenho uma dúvida de SQL")
    if offset == 2:
        talk.post(USERS[5], at(0, 10), text="Boa madrugada 🦉 #python")
    if offset == 4:
        talk.post(USERS[5], at(19, 30), left_chat_member=dict(USERS[5], is_bot=False))


def _thread(talk: Conversation, asked_at: datetime) -> None:
    rng = talk.rng
    asker = rng.choice(USERS)
    index = rng.randrange(len(QUESTIONS))
    text = QUESTIONS[index]
    typo = rng.random() < 0.15
    question = talk.post(asker, asked_at, text=text.replace("?", "") if typo else text)
    if typo:
        edited = dict(question, text=text, edit_date=question["date"] + 95)
        talk.deliver(edited["edit_date"], "edited_message", edited)
    replied_at = asked_at
    for _ in range(rng.choice([0, 1, 1, 2, 3])):
        replied_at += timedelta(minutes=rng.randint(1, 90))
        others = [user for user in USERS if user["id"] != asker["id"]]
        talk.post(
            rng.choice(others),
            replied_at,
            text=ANSWERS[index],
            reply_to_message={k: question[k] for k in ("message_id", "from", "chat")}
            | {"date": question["date"], "text": question["text"]},
        )


def _caption(caption: str | None) -> dict[str, str]:
    return {"caption": caption} if caption else {}


@dataclass
class DemoRun:
    """What the demo did."""

    settings: Settings
    statuses: dict[int, int]
    raw_objects: int
    results: list[DayResult]

    @property
    def answers(self) -> str:
        """The webhook's answers, counted: ``113x 200``."""
        return ", ".join(
            f"{n}x {status}" for status, n in sorted(self.statuses.items())
        )

    @property
    def is_stored(self) -> bool:
        return all(200 <= status < 300 for status in self.statuses)


def run(folder: Path, bodies: list[bytes], on_post: Callable[[], None]) -> DemoRun:
    """Post the updates through the webhook into ``folder``; compact each day.

    The webhook runs as Chalice runs it, reading its settings from the environment,
    so this sets the demo's variables in ``os.environ``.
    """
    from chalicelib import jobs

    environment = demo_environment(folder)
    os.environ.update(environment)
    settings = Settings.from_env(environment)
    statuses = post_all(bodies, on_post)
    worker = jobs.compactor(settings)
    raw_keys = list(worker.raw.keys(layout.RAW_PREFIX))
    done = DemoRun(settings, statuses, len(raw_keys), [])
    if done.is_stored:
        done.results = [worker.compact_day(day) for day in raw_days(raw_keys)]
    return done


def shell_settings(settings: Settings) -> str:
    """The line that points the other commands at the demo's lake."""
    return (
        f"export TGLAKE_RAW={settings.raw} TGLAKE_ENRICHED={settings.enriched} "
        f"TGLAKE_TIMEZONE={settings.timezone}"
    )


def post_all(bodies: list[bytes], on_post: Callable[[], None]) -> dict[int, int]:
    """Post every body through the real webhook handler; count the answers."""
    from chalice.test import Client

    import app

    # The test client applies the dev stage of the project's .chalice/config.json.
    project_dir = Path(app.__file__).resolve().parent
    statuses: dict[int, int] = {}
    headers = {
        "Content-Type": "application/json",
        "X-Telegram-Bot-Api-Secret-Token": DEMO_SECRET,
    }
    with Client(app.app, stage_name="dev", project_dir=str(project_dir)) as client:
        for body in bodies:
            reply = client.http.post("/webhook", headers=headers, body=body)
            statuses[reply.status_code] = statuses.get(reply.status_code, 0) + 1
            on_post()
    return statuses


def demo_environment(folder: Path) -> dict[str, str]:
    """The variables the demo runs under, whatever the caller's shell has set."""
    return {
        "TGLAKE_RAW": str(folder / "raw"),
        "TGLAKE_ENRICHED": str(folder / "enriched"),
        "TGLAKE_TIMEZONE": DEMO_ZONE,
        "TGLAKE_SECRET_TOKEN": DEMO_SECRET,
        "TGLAKE_SECRET_PARAMETER": "",
        "TGLAKE_CHAT_IDS": "",
        "TGLAKE_STAGE": "dev",
        "TGLAKE_BOT_ID": "0",
    }


def raw_days(keys: Iterable[str]) -> list[date]:
    """The distinct partition days among raw keys."""
    days = {layout.day_of_key(key) for key in keys if key.endswith(layout.RAW_SUFFIX)}
    return sorted(day for day in days if day is not None)
