"""The SQL files in ``athena_sql/``: their headers, their parameters, and running them.

Every file starts with a comment block: the first line is the question the file
answers, then a description, then one line per parameter::

    -- @param start date 1970-01-01 First local day, inclusive.

In the SQL, ``{{start}}`` marks where the value goes. Values of the kinds ``text``,
``date``, ``zone`` and ``location`` sit inside single quotes in the file
(``'{{start}}'``); ``int`` and ``name`` values sit outside quotes (``LIMIT {{limit}}``,
``FROM {{table}}``). Filling a file is therefore the same by hand and by ``tglake
query``: replace each placeholder with its value, doubling any single quote in a text
value. Each value is checked against its kind first, so a value can never end a
string or add SQL.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from chalicelib.config import Settings
from chalicelib.errors import QueryError

QUERY_DIR = Path(__file__).resolve().parents[1] / "athena_sql"
VIEW_FILE = "create_view_all_messages"
FORMATS = ("table", "csv", "json")
KINDS = ("text", "date", "int", "name", "zone", "location")
QUOTED_KINDS = frozenset({"text", "date", "zone", "location"})

_PLACEHOLDER = re.compile(r"\{\{\s*([a-z][a-z0-9_]*)\s*\}\}")
_PARAM_LINE = re.compile(r"@param\s+([a-z][a-z0-9_]*)\s+(\w+)\s+(\S+)\s*(.*)")
_DDL_START = re.compile(r"\s*(CREATE|DROP|ALTER|MSCK)\b", re.IGNORECASE)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# Every int parameter (a limit, a user id, 0 for "all") is a count or an id.
_INT = re.compile(r"\d{1,18}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_ZONE = re.compile(r"[A-Za-z0-9_+\-/]{1,64}")
_LOCATION = re.compile(r"s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/[A-Za-z0-9._\-=/]*)?")
_MAX_TEXT = 1000
_SHOWN_CHARS = 60


@dataclass(frozen=True)
class Param:
    """One declared parameter of a query file."""

    name: str
    kind: str
    default: str
    help: str = ""


@dataclass(frozen=True)
class QueryFile:
    """One file of ``athena_sql/``, read and checked."""

    name: str
    title: str
    description: str
    parameters: tuple[Param, ...]
    is_ddl: bool
    path: Path
    sql: str = field(repr=False)

    @property
    def params(self) -> dict[str, str]:
        """Each parameter's name and default value."""
        return {param.name: param.default for param in self.parameters}


@dataclass(frozen=True)
class QueryResult:
    """Rows of an answer, as Python values, with their column names."""

    columns: list[str]
    rows: list[tuple[Any, ...]]


def available(folder: Path = QUERY_DIR) -> list[QueryFile]:
    """Every query file: the table setup first (in setup order), then the analyses."""
    files = [load(path) for path in sorted(folder.glob("*.sql"))]
    return sorted(files, key=lambda query: (not query.is_ddl, query.name))


def get(name: str, folder: Path = QUERY_DIR) -> QueryFile:
    """The query file called ``name`` (the file name without ``.sql``)."""
    path = folder / f"{name}.sql"
    if not _NAME.fullmatch(name) or not path.is_file():
        names = ", ".join(query.name for query in available(folder))
        raise QueryError(f"no query named {name!r}; available: {names}")
    return load(path)


def load(path: Path) -> QueryFile:
    """Read a query file and check that its header and placeholders agree."""
    sql = path.read_text(encoding="utf-8")
    header = _header(sql)
    if not header or header[0].startswith("@param"):
        raise QueryError(f"{path.name}: the first comment line must be its question")
    parameters = []
    description = []
    for line in header[1:]:
        if line.startswith("@param"):
            parameters.append(_param(path, line))
        elif line or description:
            description.append(line)
    query = QueryFile(
        name=path.stem,
        title=header[0],
        description="\n".join(description).strip(),
        parameters=tuple(parameters),
        is_ddl=_DDL_START.match(_code_only(sql)) is not None,
        path=path,
        sql=sql,
    )
    _check_placeholders(query)
    return query


def resolve(
    query: QueryFile,
    given: Mapping[str, str] | None = None,
    settings: Settings | None = None,
) -> dict[str, str]:
    """Every parameter's checked value: given, else from settings, else the default."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(query.params))
    if unknown:
        known = ", ".join(query.params) or "none"
        raise QueryError(
            f"{query.name} has no parameter {', '.join(unknown)} (it takes: {known})"
        )
    from_settings = settings_defaults(settings) if settings else {}
    values = {}
    for param in query.parameters:
        raw = given.get(param.name, from_settings.get(param.name, param.default))
        values[param.name] = check_value(param, raw)
    return values


def settings_defaults(settings: Settings) -> dict[str, str]:
    """Parameter values that the lake's configuration already knows."""
    values = {"timezone": settings.timezone, "database": settings.athena_database}
    if settings.raw.startswith("s3://"):
        values["raw_location"] = settings.raw
    if settings.enriched.startswith("s3://"):
        values["enriched_location"] = settings.enriched
    return values


def check_value(param: Param, value: str) -> str:
    """The value as it goes into the SQL, or a QueryError naming the parameter."""
    problem = _problem(param.kind, value)
    if problem:
        shown = value if len(value) <= _SHOWN_CHARS else value[:_SHOWN_CHARS] + "…"
        raise QueryError(f"parameter {param.name}: {problem}, not {shown!r}")
    if param.kind == "int":
        return str(int(value))
    if param.kind == "location":
        return value.rstrip("/") + "/"
    return value


def fill(query: QueryFile, values: Mapping[str, str]) -> str:
    """The SQL with every placeholder replaced by its checked value."""
    parts = []
    for kind, text in segments(query.sql):
        if kind in ("code", "string"):
            text = _PLACEHOLDER.sub(
                functools.partial(_literal, values, quoted=kind == "string"), text
            )
        parts.append(text)
    return "".join(parts)


def render(
    name: str, settings: Settings | None = None, params: Mapping[str, str] | None = None
) -> str:
    """The named file's SQL, filled and ready for Athena."""
    query = get(name)
    return fill(query, resolve(query, params, settings))


def run_local(
    name: str, settings: Settings, params: Mapping[str, str] | None = None
) -> QueryResult:
    """Run one analysis on DuckDB over the lake's local folders, as Athena would."""
    from chalicelib import translate
    from chalicelib.local_engine import VIEW, LocalEngine

    query = get(name)
    if query.is_ddl:
        raise QueryError(
            f"{name} sets up Athena (a database, table or view); the local engine "
            "builds its own tables (messages, raw_updates, all_messages)"
        )
    sql = fill(query, resolve(query, params, settings))
    for variable, location in (
        ("TGLAKE_RAW", settings.raw),
        ("TGLAKE_ENRICHED", settings.enriched),
    ):
        if Path(location).is_file():
            raise QueryError(f"{variable} is {location}, a file and not a folder")
    with LocalEngine(settings) as engine:
        engine.create_view(VIEW, view_sql(settings, engine.schema()))
        return engine.run(translate.to_duckdb(sql, engine.schema()))


def run_athena(
    name: str,
    settings: Settings,
    params: Mapping[str, str] | None = None,
    *,
    runner: Any = None,
) -> QueryResult:
    """Run one file (a query or a table setup) on Athena and wait for its answer."""
    from chalicelib import translate
    from chalicelib.athena import AthenaRunner

    query = get(name)
    sql = fill(query, resolve(query, params, settings))
    if not query.is_ddl:
        # Refuse here what Athena would refuse after a paid round trip.
        translate.parse_trino(sql)
    runner = runner or AthenaRunner(settings)
    return runner.run(statement(sql), in_database=not _creates_database(sql))


def statement(sql: str) -> str:
    """The SQL without its header comment, as it is sent to Athena."""
    lines = sql.splitlines(keepends=True)
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith("--")):
        lines.pop(0)
    return "".join(lines)


def view_sql(settings: Settings, schema: Mapping[str, Mapping[str, str]]) -> str:
    """The DuckDB text of the ``all_messages`` view, from its Athena file."""
    frozen = tuple(
        sorted((table, tuple(cols.items())) for table, cols in schema.items())
    )
    return _translated_view(settings.timezone, frozen)


@functools.lru_cache(maxsize=8)
def _translated_view(timezone: str, schema: tuple[Any, ...]) -> str:
    # Translating the long view takes a good part of a second: once per process.
    from sqlglot import exp

    from chalicelib import translate

    sql = render(VIEW_FILE, params={"timezone": timezone})
    statement = translate.parse_trino(sql)
    if not isinstance(statement, exp.Create) or statement.expression is None:
        raise QueryError(f"{VIEW_FILE}.sql must be one CREATE VIEW ... AS statement")
    tables = {table: dict(columns) for table, columns in schema}
    return translate.to_duckdb(statement.expression.sql(dialect="trino"), tables)


def format_result(result: QueryResult, fmt: str, *, max_rows: int | None = None) -> str:
    """The result as an aligned table (its first ``max_rows``), CSV or JSON text."""
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows([[_text(v) for v in row] for row in result.rows])
        return out.getvalue()
    if fmt == "json":
        records = [dict(zip(result.columns, row, strict=True)) for row in result.rows]
        return json.dumps(records, ensure_ascii=False, indent=2, default=_json) + "\n"
    if fmt == "table":
        return _table(result, max_rows)
    raise QueryError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")


def segments(sql: str) -> Iterator[tuple[str, str]]:
    """Split SQL into code, string literals, quoted names and comments."""
    i, start, n = 0, 0, len(sql)
    while i < n:
        two = sql[i : i + 2]
        char = sql[i]
        if two == "--":
            end = sql.find("\n", i)
            kind, stop = "comment", n if end < 0 else end
        elif two == "/*":
            end = sql.find("*/", i + 2)
            kind, stop = "comment", n if end < 0 else end + 2
        elif char in "'\"`":
            kind, stop = ("string" if char == "'" else "name"), _close(sql, i, char)
        else:
            i += 1
            continue
        if start < i:
            yield "code", sql[start:i]
        if kind == "string":
            yield "code", char
            yield kind, sql[i + 1 : stop - 1]
            yield "code", sql[stop - 1 : stop]
        else:
            yield kind, sql[i:stop]
        i = start = stop
    if start < n:
        yield "code", sql[start:]


def _close(sql: str, i: int, quote: str) -> int:
    j = i + 1
    while True:
        j = sql.find(quote, j)
        if j < 0:
            return len(sql)
        if sql[j + 1 : j + 2] == quote:
            j += 2
            continue
        return j + 1


def _header(sql: str) -> list[str]:
    lines = []
    for line in sql.splitlines():
        stripped = line.strip()
        if not stripped.startswith("--"):
            break
        lines.append(stripped[2:].strip())
    while lines and not lines[0]:
        lines.pop(0)
    return lines


def _param(path: Path, line: str) -> Param:
    match = _PARAM_LINE.fullmatch(line)
    if match is None:
        raise QueryError(f"{path.name}: bad parameter line {line!r}")
    name, kind, default, text = match.groups()
    if kind not in KINDS:
        raise QueryError(f"{path.name}: parameter {name} has unknown kind {kind!r}")
    param = Param(name, kind, default, text.strip())
    check_value(param, default)
    return param


def _check_placeholders(query: QueryFile) -> None:
    kinds = {param.name: param.kind for param in query.parameters}
    used = set()
    for kind, text in segments(query.sql):
        for match in _PLACEHOLDER.finditer(text):
            name = match[1]
            if kind not in ("code", "string"):
                continue
            if name not in kinds:
                raise QueryError(f"{query.path.name}: {{{{{name}}}}} is not declared")
            quoted = kinds[name] in QUOTED_KINDS
            if quoted != (kind == "string"):
                where = "inside" if quoted else "outside"
                raise QueryError(
                    f"{query.path.name}: {{{{{name}}}}} ({kinds[name]}) must stand "
                    f"{where} single quotes"
                )
            used.add(name)
    unused = sorted(set(kinds) - used)
    if unused:
        raise QueryError(f"{query.path.name}: parameter {unused[0]} is never used")


def _problem(kind: str, value: str) -> str | None:
    if kind == "text":
        if len(value) > _MAX_TEXT:
            return f"text longer than {_MAX_TEXT} characters"
        if any(ord(char) < 32 for char in value):
            return "text with control characters"
        return None
    if kind == "date":
        if not _DATE.fullmatch(value):
            return "a date must read YYYY-MM-DD"
        try:
            date.fromisoformat(value)
        except ValueError:
            return "no such date"
        return None
    if kind == "int":
        return None if _INT.fullmatch(value) else "a whole number 0 or more is expected"
    if kind == "name":
        return None if _NAME.fullmatch(value) else "a name of letters, digits and _"
    if kind == "zone":
        return None if _is_zone(value) else "an IANA time zone name is expected"
    if kind == "location":
        ok = _LOCATION.fullmatch(value) and ".." not in value
        return None if ok else "an s3://bucket/prefix/ location is expected"
    return f"unknown kind {kind}"


def _is_zone(value: str) -> bool:
    if not _ZONE.fullmatch(value):
        return False
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _literal(values: Mapping[str, str], match: re.Match[str], *, quoted: bool) -> str:
    value = values[match[1]]
    return value.replace("'", "''") if quoted else value


def _creates_database(sql: str) -> bool:
    words = _code_only(sql).split()
    return [word.upper() for word in words[:2]] == ["CREATE", "DATABASE"]


def _code_only(sql: str) -> str:
    return "".join(text for kind, text in segments(sql) if kind != "comment")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _json(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return _text(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return str(value)


def _table(result: QueryResult, max_rows: int | None = None) -> str:
    total = len(result.rows)
    result = QueryResult(result.columns, result.rows[:max_rows])
    cells = [[_text(value) for value in row] for row in result.rows]
    widths = [len(name) for name in result.columns]
    for row in cells:
        widths = [
            max(width, len(cell)) for width, cell in zip(widths, row, strict=True)
        ]
    numeric = [
        all(
            isinstance(row[i], int | float | Decimal) or row[i] is None
            for row in result.rows
        )
        and any(row[i] is not None for row in result.rows)
        for i in range(len(result.columns))
    ]

    def line(row: list[str]) -> str:
        parts = [
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(row, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * width for width in widths)
    body = [line(row) for row in cells]
    footer = f"({total} row{'s' if total != 1 else ''})"
    if total > len(cells):
        footer = f"(the first {len(cells)} of {total} rows)"
    return "\n".join([line(list(result.columns)), rule, *body, footer]) + "\n"
