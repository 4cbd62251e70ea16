"""Every file of athena_sql/ parses for Athena and answers exactly on a fixture lake.

The fixture is one week (Monday 2024-06-03 to Sunday 2024-06-09) of a group in
America/Sao_Paulo (UTC-3) that becomes a supergroup on Wednesday, plus one private
chat. It holds a message at 23:30 local time (the next day in UTC) on Monday and on
Sunday, an edit, a photo with a caption, a voice note, a sticker, joins and leaves
(one only as a chat_member update), questions answered and not, and one update
delivered twice. The expected answers below were worked out by hand from it.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlglot
from click.testing import CliRunner
from sqlglot import exp

from chalicelib import queries
from chalicelib.cli import main
from chalicelib.compaction import Compactor
from chalicelib.config import Settings
from chalicelib.errors import QueryError
from chalicelib.ingest import Ingestor
from chalicelib.local_engine import VIEW, LocalEngine
from chalicelib.storage import open_store
from chalicelib.updates import CONTENT_KEYS, SERVICE_KEYS

ZONE = "America/Sao_Paulo"
LOCAL = timezone(timedelta(hours=-3))  # no summer time in Sao Paulo since 2019
GROUP, SUPERGROUP = -400000001, -1004000000001
ANA, BRUNO, CARLA, DAVI, EVA = 101, 102, 103, 104, 105
NAMES = {ANA: "Ana", BRUNO: "Bruno", CARLA: "Carla", DAVI: "Davi", EVA: "Eva"}
WEEK = [date(2024, 6, day) for day in range(3, 10)]
ANALYSES = [query.name for query in queries.available() if not query.is_ddl]
SETUP = [query.name for query in queries.available() if query.is_ddl]


def unix(day: int, hour: int, minute: int) -> int:
    return int(datetime(2024, 6, day, hour, minute, tzinfo=LOCAL).timestamp())


def person(user: int) -> dict[str, Any]:
    return {"id": user, "is_bot": False, "first_name": NAMES[user]}


def chat(chat_id: int) -> dict[str, Any]:
    if chat_id == GROUP:
        return {"id": GROUP, "type": "group", "title": "Grupo Teste"}
    if chat_id == SUPERGROUP:
        return {"id": SUPERGROUP, "type": "supergroup", "title": "Grupo Teste"}
    return {"id": chat_id, "type": "private", "first_name": NAMES[chat_id]}


class Conversation:
    """Telegram updates, numbered in the order they are written."""

    def __init__(self) -> None:
        self.updates: list[dict[str, Any]] = []
        self.sent: dict[tuple[int, int], dict[str, Any]] = {}

    def say(
        self,
        chat_id: int,
        message_id: int,
        user: int,
        when: tuple[int, int, int],
        *,
        reply_to: int | None = None,
        edited: tuple[int, int, int] | None = None,
        **content: Any,
    ) -> None:
        message = {
            "message_id": message_id,
            "from": person(user),
            "chat": chat(chat_id),
            "date": unix(*when),
            **content,
        }
        if reply_to is not None:
            message["reply_to_message"] = self.sent[(chat_id, reply_to)]
        kind = "message"
        if edited is not None:
            message["edit_date"] = unix(*edited)
            kind = "edited_message"
        self.sent[(chat_id, message_id)] = dict(message)
        self.updates.append({"update_id": 5000 + len(self.updates), kind: message})

    def member(self, chat_id: int, user: int, when: tuple, old: str, new: str) -> None:
        change = {
            "chat": chat(chat_id),
            "from": person(user),
            "date": unix(*when),
            "old_chat_member": {"user": person(user), "status": old},
            "new_chat_member": {"user": person(user), "status": new},
        }
        self.updates.append(
            {"update_id": 5000 + len(self.updates), "chat_member": change}
        )


def week_of_updates() -> list[dict[str, Any]]:
    c = Conversation()
    photo = [{"file_id": "p", "file_unique_id": "p", "width": 9, "height": 9}]
    # Monday, the old group; the last message is 02:30 on Tuesday in UTC.
    c.say(
        GROUP, 1, ANA, (3, 9, 15), text="Bom dia! Alguém tem uma dúvida sobre Python?"
    )
    c.say(GROUP, 2, BRUNO, (3, 9, 20), reply_to=1, text="Tenho uma duvida sobre pandas")
    c.say(GROUP, 3, CARLA, (3, 10, 5), photo=photo, caption="Dúvida: gráfico #python")
    c.say(GROUP, 4, BRUNO, (3, 23, 30), text="/ajuda@tglake_bot python")
    # Tuesday: Davi joins and asks; Bruno edits a message; Ana writes to the bot.
    c.say(GROUP, 5, DAVI, (4, 8, 0), new_chat_members=[person(DAVI)])
    c.say(GROUP, 6, DAVI, (4, 8, 10), text="Oi pessoal, como instalo o DuckDB?")
    c.say(GROUP, 7, ANA, (4, 8, 40), reply_to=6, text="Use pip install duckdb")
    c.say(GROUP, 8, DAVI, (4, 8, 45), reply_to=7, text="Valeu!")
    c.say(GROUP, 9, CARLA, (4, 12, 0), text="Alguém viu o jogo ontem?")
    c.say(GROUP, 10, BRUNO, (4, 12, 30), text="python é ótimo")
    c.say(
        GROUP, 10, BRUNO, (4, 12, 30), edited=(4, 12, 35), text="Python é ótimo #python"
    )
    c.say(ANA, 1, ANA, (4, 14, 0), text="/start")
    # Wednesday: the group becomes a supergroup; Carla answers herself first.
    c.say(GROUP, 11, ANA, (5, 10, 0), migrate_to_chat_id=SUPERGROUP)
    c.say(SUPERGROUP, 1, ANA, (5, 10, 0), migrate_from_chat_id=GROUP)
    c.say(SUPERGROUP, 2, CARLA, (5, 10, 30), text="Como faço backup do banco?")
    c.say(SUPERGROUP, 3, CARLA, (5, 10, 40), reply_to=2, text="ninguém?")
    c.say(SUPERGROUP, 4, BRUNO, (5, 11, 0), reply_to=2, text="Com pg_dump")
    # Thursday: Eva joins with no service message, only a chat_member update.
    c.member(SUPERGROUP, EVA, (6, 10, 0), "left", "member")
    # Saturday: Davi leaves, seen both ways.
    c.say(SUPERGROUP, 5, DAVI, (8, 15, 0), left_chat_member=person(DAVI))
    c.member(SUPERGROUP, DAVI, (8, 15, 0), "member", "left")
    c.say(
        SUPERGROUP, 6, ANA, (8, 15, 30), voice={"file_id": "v", "file_unique_id": "v"}
    )
    # Sunday, ending at 23:30 local, 02:30 on Monday in UTC.
    sticker = {"file_id": "s", "file_unique_id": "s", "type": "regular"}
    c.say(SUPERGROUP, 7, ANA, (9, 20, 0), sticker=sticker)
    c.say(SUPERGROUP, 8, BRUNO, (9, 21, 0), text="Qual o melhor livro de SQL?")
    c.say(SUPERGROUP, 9, ANA, (9, 22, 0), reply_to=8, text="Não sei, mas SQL é ótimo")
    c.say(SUPERGROUP, 10, CARLA, (9, 23, 30), text="Boa noite #Python")
    return c.updates


def build_lake(root: Path, *, compact: list[date]) -> Settings:
    settings = Settings(
        raw=str(root / "raw"), enriched=str(root / "enriched"), timezone=ZONE
    )
    raw = open_store(settings.raw)
    ingestor = Ingestor(settings, raw)
    updates = week_of_updates()
    for update in [*updates, updates[0]]:  # the first one is delivered twice
        ingestor.ingest(json.dumps(update, ensure_ascii=False).encode())
    compactor = Compactor(settings, raw, open_store(settings.enriched))
    for day in compact:
        compactor.compact_day(day)
    return settings


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return build_lake(tmp_path_factory.mktemp("lake"), compact=WEEK)


def rows(name: str, settings: Settings, **params: str) -> list[tuple[Any, ...]]:
    return queries.run_local(name, settings, params).rows


def heatmap_cells() -> list[tuple[int, str, int, int]]:
    names = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
    names += ["Saturday", "Sunday"]
    busy = {(1, 9): 2, (1, 10): 1, (1, 23): 1, (2, 8): 3, (2, 12): 2, (2, 14): 1}
    busy |= {(3, 10): 2, (3, 11): 1, (6, 15): 1, (7, 20): 1, (7, 21): 1}
    busy |= {(7, 22): 1, (7, 23): 1}
    return [
        (day, names[day - 1], hour, busy.get((day, hour), 0))
        for day in range(1, 8)
        for hour in range(24)
    ]


D = date
EXPECTED: dict[str, list[tuple[Any, ...]]] = {
    "messages_per_day": [
        (D(2024, 6, 3), 4),
        (D(2024, 6, 4), 6),
        (D(2024, 6, 5), 3),
        (D(2024, 6, 8), 1),
        (D(2024, 6, 9), 4),
    ],
    "messages_per_hour": [
        (2024, 23, 1, "Monday", 9, 2),
        (2024, 23, 1, "Monday", 10, 1),
        (2024, 23, 1, "Monday", 23, 1),
        (2024, 23, 2, "Tuesday", 8, 3),
        (2024, 23, 2, "Tuesday", 12, 2),
        (2024, 23, 2, "Tuesday", 14, 1),
        (2024, 23, 3, "Wednesday", 10, 2),
        (2024, 23, 3, "Wednesday", 11, 1),
        (2024, 23, 6, "Saturday", 15, 1),
        (2024, 23, 7, "Sunday", 20, 1),
        (2024, 23, 7, "Sunday", 21, 1),
        (2024, 23, 7, "Sunday", 22, 1),
        (2024, 23, 7, "Sunday", 23, 1),
    ],
    "top_users": [
        (ANA, "Ana", None, 6, 33.3),
        (BRUNO, "Bruno", None, 5, 27.8),
        (CARLA, "Carla", None, 5, 27.8),
        (DAVI, "Davi", None, 2, 11.1),
    ],
    "keyword_search": [
        (
            D(2024, 6, 3),
            9,
            GROUP,
            1,
            ANA,
            "Ana",
            "text",
            "Bom dia! Alguém tem uma dúvida sobre Python?",
        ),
        (
            D(2024, 6, 3),
            9,
            GROUP,
            2,
            BRUNO,
            "Bruno",
            "text",
            "Tenho uma duvida sobre pandas",
        ),
        (
            D(2024, 6, 3),
            10,
            GROUP,
            3,
            CARLA,
            "Carla",
            "photo",
            "Dúvida: gráfico #python",
        ),
    ],
    "peak_hours": [
        (8, 3, 16.7, 1),
        (10, 3, 16.7, 1),
        (9, 2, 11.1, 3),
        (12, 2, 11.1, 3),
        (23, 2, 11.1, 3),
        (11, 1, 5.6, 6),
        (14, 1, 5.6, 6),
        (15, 1, 5.6, 6),
        (20, 1, 5.6, 6),
        (21, 1, 5.6, 6),
        (22, 1, 5.6, 6),
    ],
    "summary": [(18, 4, 2, 5, D(2024, 6, 3), D(2024, 6, 9), 3.6, 1, 3, 6, 4)],
    "user_report": [
        (ANA, "Ana", None, 6, 4, D(2024, 6, 3), D(2024, 6, 9), 8, 2, 2, 1, 2),
        (BRUNO, "Bruno", None, 5, 4, D(2024, 6, 3), D(2024, 6, 9), 9, 2, 1, 1, 0),
        (CARLA, "Carla", None, 5, 4, D(2024, 6, 3), D(2024, 6, 9), 10, 1, 1, 3, 1),
        (DAVI, "Davi", None, 2, 1, D(2024, 6, 4), D(2024, 6, 4), 8, 1, 1, 1, 0),
    ],
    "activity_heatmap": heatmap_cells(),
    "daily_active_users": [
        (D(2024, 6, 3), 3, 4),
        (D(2024, 6, 4), 4, 6),
        (D(2024, 6, 5), 2, 3),
        (D(2024, 6, 8), 1, 1),
        (D(2024, 6, 9), 3, 4),
    ],
    "weekly_active_users": [(D(2024, 6, 3), 4, 18)],
    "joins_leaves_per_day": [
        (D(2024, 6, 4), 1, 0),
        (D(2024, 6, 6), 1, 0),
        (D(2024, 6, 8), 0, 1),
    ],
    "content_mix_per_day": [
        (D(2024, 6, 3), "text", 3, 75.0),
        (D(2024, 6, 3), "photo", 1, 25.0),
        (D(2024, 6, 4), "text", 6, 85.7),
        (D(2024, 6, 4), "service", 1, 14.3),
        (D(2024, 6, 5), "text", 3, 60.0),
        (D(2024, 6, 5), "service", 2, 40.0),
        (D(2024, 6, 8), "service", 1, 50.0),
        (D(2024, 6, 8), "voice", 1, 50.0),
        (D(2024, 6, 9), "text", 3, 75.0),
        (D(2024, 6, 9), "sticker", 1, 25.0),
    ],
    "top_terms": [
        ("word", "duvida", 3, 3),
        ("word", "python", 3, 3),
        ("word", "alguem", 2, 2),
        ("word", "duckdb", 2, 2),
        ("word", "otimo", 2, 2),
        ("phrase", "alguem viu", 1, 1),
        ("phrase", "duvida grafico", 1, 1),
        ("phrase", "faco backup", 1, 1),
        ("phrase", "install duckdb", 1, 1),
        ("phrase", "jogo ontem", 1, 1),
    ],
    "top_tags": [
        ("command", "/ajuda", 1, 1),
        ("command", "/start", 1, 1),
        ("hashtag", "#python", 3, 2),
    ],
    "answered_questions": [(6, 4, 66.7, 1800.0, 3060.0)],
    "chats": [
        (
            SUPERGROUP,
            "supergroup",
            "Grupo Teste",
            GROUP,
            17,
            D(2024, 6, 3),
            D(2024, 6, 9),
        ),
        (ANA, "private", None, None, 1, D(2024, 6, 4), D(2024, 6, 4)),
    ],
}
PARAMS = {"top_terms": {"limit": "5"}}


def test_every_analysis_has_hand_worked_answers():
    assert sorted(EXPECTED) == sorted(ANALYSES)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_an_analysis_gives_exactly_the_hand_worked_answer(lake, name):
    assert rows(name, lake, **PARAMS.get(name, {})) == EXPECTED[name]


def test_the_23_30_message_counts_on_its_local_sunday_not_on_monday_in_utc(lake):
    sunday = rows("messages_per_hour", lake, start="2024-06-09", end="2024-06-09")

    assert sunday[-1] == (2024, 23, 7, "Sunday", 23, 1)


def test_a_date_range_keeps_only_its_days(lake):
    answer = rows("messages_per_day", lake, start="2024-06-04", end="2024-06-05")

    assert answer == [(D(2024, 6, 4), 6), (D(2024, 6, 5), 3)]


def test_the_keyword_search_ignores_case_and_accents_and_escapes_quotes(lake):
    found = rows("keyword_search", lake, keyword="ÓTIMO")
    quoted = rows("keyword_search", lake, keyword="it's")

    assert [(row[2], row[3]) for row in found] == [(GROUP, 10), (SUPERGROUP, 9)]
    assert found[0][-1] == "Python é ótimo #python"
    assert quoted == []


def test_one_users_report_is_that_users_row(lake):
    assert rows("user_report", lake, user_id=str(DAVI)) == EXPECTED["user_report"][3:]


def test_the_view_from_raw_files_alone_equals_the_compacted_table(lake, tmp_path):
    raw_only = replace(lake, enriched=str(tmp_path / "never-compacted"))

    with LocalEngine(lake) as engine:
        compacted = engine.run("SELECT * FROM messages ORDER BY chat_id, message_id")
    with LocalEngine(raw_only) as engine:
        engine.create_view(VIEW, queries.view_sql(raw_only, engine.schema()))
        viewed = engine.run("SELECT * FROM all_messages ORDER BY chat_id, message_id")

    assert len(compacted.rows) == 22
    assert viewed == compacted


def test_the_view_adds_days_not_compacted_yet_and_counts_each_message_once(tmp_path):
    settings = build_lake(tmp_path, compact=WEEK[:-1])

    table = rows("messages_per_day", settings)
    view = rows("messages_per_day", settings, table="all_messages")

    assert table[-1] == (D(2024, 6, 8), 1)
    assert view == EXPECTED["messages_per_day"]


def test_an_empty_lake_answers_with_no_rows(tmp_path):
    settings = Settings(raw=str(tmp_path / "r"), enriched=str(tmp_path / "e"))

    assert rows("messages_per_day", settings) == []
    assert rows("joins_leaves_per_day", settings) == []


@pytest.mark.parametrize("name", ANALYSES)
def test_every_analysis_parses_as_trino_sql(name):
    sql = queries.render(name)

    statements = sqlglot.parse(sql, read="trino")

    assert len(statements) == 1
    assert isinstance(statements[0], exp.Query)


@pytest.mark.parametrize("name", SETUP)
def test_every_setup_file_parses_as_athena_ddl(name):
    sql = queries.render(name)

    statements = sqlglot.parse(sql, read="athena")

    assert len(statements) == 1
    assert isinstance(statements[0], exp.Create)


def test_the_table_ddl_has_exactly_the_columns_of_schema_py():
    from chalicelib.schema import ATHENA_TYPES, SCHEMA

    sql = queries.render("create_table_messages")
    create = sqlglot.parse_one(sql, read="athena")
    declared = [
        (column.name, column.args["kind"]) for column in create.this.expressions
    ]
    expected = [
        (f.name, exp.DataType.build(ATHENA_TYPES[f.type], dialect="athena"))
        for f in SCHEMA
    ]

    assert declared == expected
    assert "`date`" in sql


@pytest.mark.parametrize("name", ["create_table_messages", "create_table_raw_updates"])
def test_a_table_is_found_by_partition_projection(name):
    sql = queries.render(name, params={f"{_layer(name)}_location": "s3://tglake-b/p"})

    assert "'projection.context_date.range' = '2015-06-24,NOW'" in sql
    assert "'projection.context_date.format' = 'yyyy-MM-dd'" in sql
    assert "LOCATION 's3://tglake-b/p/telegram/'" in sql
    assert "= 's3://tglake-b/p/telegram/context_date=${context_date}/'" in sql


def _layer(name: str) -> str:
    return "enriched" if name.endswith("messages") else "raw"


def test_the_view_tells_content_types_apart_in_the_order_of_updates_py():
    sql = queries.get("create_view_all_messages").sql
    first_key = sql[
        sql.index("CASE\n      WHEN json_format") : sql.index("AS first_key")
    ]

    keys = re.findall(r"THEN '(\w+)'", first_key)

    assert keys == [*CONTENT_KEYS, *SERVICE_KEYS]


def test_every_file_states_its_question_and_documents_each_parameter():
    for query in queries.available():
        assert query.title.endswith("?") or query.is_ddl, query.name
        for param in query.parameters:
            assert param.help, (query.name, param.name)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"start": "2024-02-30"}, "no such date"),
        ({"start": "yesterday"}, "YYYY-MM-DD"),
        ({"limit": "10; DROP TABLE messages"}, "whole number"),
        ({"table": "messages m, users"}, "name of letters"),
        ({"colour": "red"}, "has no parameter colour"),
    ],
)
def test_a_bad_parameter_value_is_refused_before_any_sql_runs(params, message):
    with pytest.raises(QueryError, match=message):
        queries.render("top_users", params=params)


def test_a_text_value_cannot_end_its_string():
    sql = queries.render("keyword_search", params={"keyword": "x') OR 1=1 --"})

    assert "normalize('x'') OR 1=1 --', NFD)" in sql
    assert len(sqlglot.parse(sql, read="trino")) == 1


def test_settings_fill_the_lake_time_zone_and_locations():
    settings = Settings(
        raw="s3://raw-bucket/lake", enriched="s3://rich/x/", timezone=ZONE
    )

    view = queries.render("create_view_all_messages", settings)
    table = queries.render("create_table_raw_updates", settings)

    assert f"from_unixtime(unix_date, '{ZONE}')" in view
    assert "LOCATION 's3://raw-bucket/lake/telegram/'" in table


def test_a_placeholder_outside_quotes_for_a_text_kind_is_refused(tmp_path):
    path = tmp_path / "bad.sql"
    path.write_text("-- Is it?\n--\n-- @param word text x A word.\nSELECT {{word}}\n")

    with pytest.raises(QueryError, match="inside single quotes"):
        queries.load(path)


def test_the_lead_interface_lists_names_titles_defaults_and_kinds():
    files = {query.name: query for query in queries.available()}

    assert files["messages_per_day"].title == "How many messages were sent on each day?"
    assert files["top_users"].params["limit"] == "10"
    assert files["create_table_messages"].is_ddl
    assert not files["summary"].is_ddl
    assert files["summary"].path.name == "summary.sql"


def test_a_setup_file_is_not_run_locally(lake):
    with pytest.raises(QueryError, match="sets up Athena"):
        queries.run_local("create_table_messages", lake)


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("csv", "day,messages\n2024-06-04,6\n2024-06-05,3\n"),
        (
            "json",
            '[\n  {\n    "day": "2024-06-04",\n    "messages": 6\n  },\n'
            '  {\n    "day": "2024-06-05",\n    "messages": 3\n  }\n]\n',
        ),
        (
            "table",
            "day         messages\n----------  --------\n2024-06-04         6\n"
            "2024-06-05         3\n(2 rows)\n",
        ),
    ],
)
def test_a_result_prints_as_table_csv_or_json(lake, fmt, expected):
    params = {"start": "2024-06-04", "end": "2024-06-05"}
    result = queries.run_local("messages_per_day", lake, params)

    assert queries.format_result(result, fmt) == expected


def cli(lake: Settings, *args: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("TGLAKE_RAW", lake.raw)
    monkeypatch.setenv("TGLAKE_ENRICHED", lake.enriched)
    monkeypatch.setenv("TGLAKE_TIMEZONE", lake.timezone)
    return CliRunner().invoke(main, list(args))


def test_tglake_query_prints_the_answer_as_csv(lake, monkeypatch):
    result = cli(
        lake,
        "query",
        "messages_per_day",
        "--param",
        "start=2024-06-09",
        "--format",
        "csv",
        monkeypatch=monkeypatch,
    )

    assert result.exit_code == 0, result.output
    assert result.stdout == "day,messages\n2024-06-09,4\n"


def test_tglake_query_list_names_every_file_and_its_parameters(lake, monkeypatch):
    result = cli(lake, "query", "--list", monkeypatch=monkeypatch)

    assert result.exit_code == 0
    for query in queries.available():
        assert query.name in result.stdout
    assert "--param keyword=<text>  (default dúvida)" in result.stdout


def test_tglake_query_shows_the_filled_sql_for_the_athena_console(lake, monkeypatch):
    result = cli(
        lake, "query", "create_view_all_messages", "--show-sql", monkeypatch=monkeypatch
    )

    assert result.exit_code == 0
    assert "{{" not in result.stdout
    assert f"'{ZONE}'" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("query", "no_such_query"),
        ("query", "top_users", "--param", "limit=ten"),
        ("query", "top_users", "--param", "limit"),
    ],
)
def test_tglake_query_ends_a_user_error_with_one_line(lake, monkeypatch, args):
    result = cli(lake, *args, monkeypatch=monkeypatch)

    assert result.exit_code == 1
    assert result.output.startswith("Error: ")
    assert len(result.output.strip().splitlines()) == 1


def test_tglake_query_has_help(lake, monkeypatch):
    result = cli(lake, "query", "--help", monkeypatch=monkeypatch)

    assert result.exit_code == 0
    assert "--engine [local|athena]" in result.output
