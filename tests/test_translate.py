"""Trino SQL on DuckDB gives Athena's answers, or is refused as Athena refuses it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import duckdb
import pytest
import sqlglot

from chalicelib import translate
from chalicelib.errors import QueryError

SCHEMA = {
    "t": {
        "day": "date",
        "stamp": "timestamp",
        "unix": "bigint",
        "seven": "bigint",
        "word": "varchar",
        "nothing": "varchar",
    }
}
# 2024-06-09 is a Sunday; 1717986600 is 2024-06-10 02:30 UTC, 23:30 the evening
# before in Sao Paulo (UTC-3).
ROW = """
    SELECT DATE '2024-06-09' AS day, TIMESTAMP '2024-06-10 02:30:00' AS stamp,
           CAST(1717986600 AS BIGINT) AS unix, CAST(7 AS BIGINT) AS seven,
           'Dúvida' AS word, CAST(NULL AS VARCHAR) AS nothing
"""


@pytest.fixture(scope="module")
def connection() -> Iterator[Any]:
    con = duckdb.connect(":memory:")
    translate.prepare(con)
    con.execute(f"CREATE TABLE t AS {ROW}")
    yield con
    con.close()


def answer(connection: Any, expression: str) -> Any:
    sql = translate.to_duckdb(f"SELECT {expression} AS value FROM t", SCHEMA)
    return connection.execute(sql).fetchone()[0]


# Each expected value is Trino's (Athena engine v3) answer.
@pytest.mark.parametrize(
    ("expression", "athena"),
    [
        ("EXTRACT(dow FROM day)", 7),
        ("EXTRACT(DAY_OF_WEEK FROM day)", 7),
        ("day_of_week(day)", 7),
        ("EXTRACT(YEAR_OF_WEEK FROM DATE '2024-12-30')", 2025),
        ("week(DATE '2024-12-30')", 1),
        ("hour(from_unixtime(unix, 'America/Sao_Paulo'))", 23),
        ("CAST(from_unixtime(unix, 'America/Sao_Paulo') AS date)", date(2024, 6, 9)),
        ("day_of_week(from_unixtime(unix, 'America/Sao_Paulo'))", 7),
        ("hour(from_unixtime(unix))", 2),
        ("seven / 2", 3),
        ("-seven / 2", -3),
        ("7 / 2", 3),
        ("CAST(seven AS double) / 2", 3.5),
        ("stamp AT TIME ZONE 'America/Sao_Paulo'", datetime(2024, 6, 9, 23, 30)),
        ("hour(stamp AT TIME ZONE 'America/Sao_Paulo')", 23),
        ("hour(stamp)", 2),
        ("CAST(date_add('day', 1, day) AS varchar)", "2024-06-10"),
        ("CAST(day - INTERVAL '1' DAY AS varchar)", "2024-06-08"),
        ("CAST(day AS varchar)", "2024-06-09"),
        ("date_add('month', 1, day)", date(2024, 7, 9)),
        ("date_diff('day', stamp, stamp + INTERVAL '23' HOUR)", 0),
        ("date_diff('hour', stamp, stamp + INTERVAL '119' MINUTE)", 1),
        ("date_diff('day', day, date_add('day', 2, day))", 2),
        ("lower(regexp_replace(normalize(word, NFD), '\\p{Mn}', ''))", "duvida"),
        ("length(normalize(word, NFD))", 7),
        ("max_by(nothing, unix)", None),
        ("concat('a', nothing)", None),
        ("date_format(stamp, '%W %H:%i')", "Monday 02:30"),
    ],
)
def test_a_translated_expression_gives_athenas_answer(connection, expression, athena):
    assert answer(connection, expression) == athena


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT word, FROM t", "comma before FROM"),
        ("SELECT word, seven, FROM t", "comma before FROM"),
        ("SELECT count(*) FROM t GROUP BY word, ORDER BY 1", "comma before ORDER"),
        ("SELECT seven FROM t WHERE seven IN (1, 2,)", "comma before )"),
        ("SELECT seven::varchar FROM t", "'::' cast"),
        ("SELECT word ILIKE 'd%' FROM t", "ILIKE"),
        ("SELECT strip_accents(word) FROM t", "not on Athena"),
        ("SELECT median(seven) FROM t", "not on Athena"),
        ("SELECT format_datetime(stamp, 'yyyy') FROM t", "no local translation"),
        ("SELECT missing FROM t", "could not be resolved"),
        ("SELECT 1; SELECT 2", "one statement"),
        ("SELECT FROM WHERE", "not valid Trino SQL"),
    ],
)
def test_sql_that_athena_refuses_is_refused_locally(sql, reason):
    with pytest.raises(
        QueryError, match=reason.replace("(", r"\(").replace(")", r"\)")
    ):
        translate.to_duckdb(sql, SCHEMA)


@pytest.mark.parametrize(
    ("expression", "athena"),
    [
        ("count_if(seven > 5)", 0),
        ("count(*)", 0),
        ("sum(seven)", None),
        ("max_by(word, unix)", None),
    ],
)
def test_an_aggregate_over_no_rows_gives_athenas_answer(connection, expression, athena):
    sql = translate.to_duckdb(f"SELECT {expression} FROM t WHERE seven > 100", SCHEMA)
    assert connection.execute(sql).fetchone()[0] == athena


def test_count_if_counts_only_true_conditions(connection):
    assert answer(connection, "count_if(seven > 5)") == 1
    assert answer(connection, "count_if(nothing = 'x')") == 0


def test_an_unnamed_column_is_named_as_athena_names_it(connection):
    sql = translate.to_duckdb("SELECT count(*), max(seven) AS top FROM t", SCHEMA)

    cursor = connection.execute(sql)

    assert [column[0] for column in cursor.description] == ["_col0", "top"]


def test_the_session_answers_in_utc_like_athena(connection):
    zone = connection.execute("SELECT current_setting('TimeZone')").fetchone()[0]

    assert zone == "UTC"


def test_a_trailing_comma_is_what_sqlglot_alone_would_silently_drop():
    dropped = sqlglot.transpile("SELECT a, FROM t", read="trino", write="duckdb")[0]

    assert dropped == "SELECT a FROM t"
    with pytest.raises(QueryError):
        translate.check_tokens("SELECT a, FROM t")
