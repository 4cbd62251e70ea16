"""Athena's SQL (Trino) as DuckDB SQL that gives Athena's answers.

sqlglot translates the dialect; this module is the one place that knows where its
translation alone is silently wrong, and fixes or refuses those cases:

- ``EXTRACT(dow FROM x)`` is 1 = Monday .. 7 = Sunday in Trino, 0 = Sunday in
  DuckDB: it becomes ``isodow``. ``EXTRACT(YEAR_OF_WEEK ...)`` becomes ``isoyear``.
- ``from_unixtime(x, zone)`` keeps its zone: the value becomes the wall-clock time in
  that zone, so ``hour()``, ``CAST(... AS date)`` and ``date_format`` read it as
  Trino does.
- ``a / b`` on integers truncates, as in Trino (DuckDB's ``integer_division``).
- ``ts AT TIME ZONE z`` on a timestamp without zone reads ``ts`` as UTC (Athena's
  session zone) and gives the wall-clock time in ``z``; DuckDB would do the opposite.
- The session zone is UTC, as on Athena, so ``hour()`` of a zoned value agrees.
- Date arithmetic on a ``date`` stays a ``date`` (DuckDB makes it a timestamp, and
  ``CAST(... AS varchar)`` then grows a time part).
- ``date_diff`` counts whole units between timestamps, as Trino does (DuckDB's
  ``date_diff`` counts boundaries crossed).
- ``max_by(x, y)`` returns ``x`` of the row with the largest ``y`` even when that
  ``x`` is NULL (DuckDB's ``arg_max`` would skip it); ``min_by`` likewise.
- ``count_if(x)`` over no rows is 0, as in Trino (DuckDB's gives NULL).
- ``normalize(x, NFD)`` runs Python's ``unicodedata.normalize`` (DuckDB has no
  ``normalize``), so the usual accent stripping
  ``regexp_replace(normalize(x, NFD), '\\p{Mn}', '')`` works in both engines.

Refused, because Athena refuses them while DuckDB would answer: a comma before
``FROM`` (or before another clause or a closing parenthesis), ``::`` casts,
``ILIKE``, functions that exist only in DuckDB, several statements in one query, and
columns or tables that do not exist. ``format_datetime`` is refused with a hint
(``date_format`` translates).

A value that Trino holds as a timestamp *with* zone is held locally as its
wall-clock time in that zone; comparing such values across two different zones is
not translated.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from chalicelib.errors import QueryError

# Statements a DuckDB connection runs first so that it answers like Athena.
DUCKDB_SETUP = (
    "SET TimeZone = 'UTC'",
    "SET integer_division = true",
)
NORMALIZE_UDF = "tglake_normalize"

_CLAUSE_WORDS = frozenset(
    {"FROM", "WHERE", "GROUP", "ORDER", "HAVING", "LIMIT", "UNION", "EXCEPT"}
    | {"INTERSECT", "WINDOW", "OFFSET", "FETCH"}
)
_DUCKDB_ONLY = frozenset(
    {
        "strip_accents",
        "median",
        "quantile",
        "quantile_cont",
        "quantile_disc",
        "string_split",
        "str_split",
        "strftime",
        "strptime",
        "epoch",
        "regexp_matches",
        "list_transform",
        "list_filter",
        "list_aggregate",
        "list_value",
        "isodow",
        "isoyear",
        "dayofweek",
        "weekofyear",
        "ifnull",
        "nfc_normalize",
        "arg_max",
        "arg_min",
        "string_agg",
        "group_concat",
        "printf",
        "today",
        "epoch_ms",
        "make_date",
    }
)
_NO_LOCAL_EQUIVALENT = {
    "format_datetime": "use date_format(x, '%Y-%m-%d %H:%i') instead",
}
_UNNAMED = re.compile(r"_col_\d+")
_DOW_PARTS = frozenset({"DOW", "DAY_OF_WEEK"})
_YEAR_OF_WEEK_PARTS = frozenset({"YEAR_OF_WEEK", "YOW"})
_DATE_UNITS = frozenset({"DAY", "WEEK", "MONTH", "QUARTER", "YEAR"})


def prepare(connection: Any) -> None:
    """Make a DuckDB connection answer like Athena: session settings and functions."""
    for statement in DUCKDB_SETUP:
        connection.execute(statement)
    connection.create_function(
        NORMALIZE_UDF, normalize_text, ["VARCHAR", "VARCHAR"], "VARCHAR"
    )


def normalize_text(value: str, form: str) -> str:
    """Trino's ``normalize``: Unicode normalization in one of NFC, NFD, NFKC, NFKD."""
    return unicodedata.normalize(form.upper(), value)  # type: ignore[arg-type]


def parse_trino(sql: str) -> Any:
    """Parse one Trino statement (a sqlglot tree), refusing what Athena refuses."""
    import sqlglot
    from sqlglot.errors import ParseError, TokenError

    check_tokens(sql)
    try:
        statements = [s for s in sqlglot.parse(sql, read="trino") if s is not None]
    except (ParseError, TokenError) as error:
        raise QueryError(f"not valid Trino SQL: {_first_line(error)}") from None
    if len(statements) != 1:
        raise QueryError(
            f"Athena runs one statement per query, this text has {len(statements)}"
        )
    statement = statements[0]
    _refuse_nodes(statement)
    return statement


def check_tokens(sql: str) -> None:
    """Refuse, token by token, the SQL that DuckDB accepts but Athena does not."""
    import sqlglot
    from sqlglot.errors import TokenError
    from sqlglot.tokens import TokenType

    try:
        tokens = sqlglot.tokenize(sql, read="trino")
    except TokenError as error:
        raise QueryError(f"not valid Trino SQL: {_first_line(error)}") from None
    for token, following in zip(tokens, [*tokens[1:], None], strict=True):
        if token.token_type == TokenType.DCOLON:
            raise QueryError(
                f"line {token.line}: Athena has no '::' cast; write CAST(x AS type)"
            )
        if token.token_type == TokenType.COMMA and _ends_list(following):
            word = following.text.upper().split()[0] if following else "the end"
            raise QueryError(
                f"line {token.line}: a comma before {word}; Athena refuses it"
            )
        name = token.text.lower()
        is_call = following is not None and following.token_type == TokenType.L_PAREN
        if is_call and token.token_type == TokenType.VAR and name in _DUCKDB_ONLY:
            raise QueryError(
                f"line {token.line}: {name}() exists in DuckDB but not on Athena"
            )
        if is_call and name in _NO_LOCAL_EQUIVALENT:
            raise QueryError(
                f"line {token.line}: {name}() has no local translation; "
                f"{_NO_LOCAL_EQUIVALENT[name]}"
            )


def to_duckdb(sql: str, schema: Mapping[str, Mapping[str, str]]) -> str:
    """Translate one Trino query for DuckDB; ``schema`` maps table -> column -> type."""
    from sqlglot.errors import OptimizeError
    from sqlglot.optimizer.annotate_types import annotate_types
    from sqlglot.optimizer.qualify import qualify

    tree = parse_trino(sql)
    tables = {name: dict(columns) for name, columns in schema.items()}
    try:
        tree = qualify(tree, schema=tables, dialect="trino", quote_identifiers=True)
    except OptimizeError as error:
        raise QueryError(f"Athena would refuse this query: {error}") from None
    tree = annotate_types(tree, schema=tables, dialect="trino")
    tree = _fix_semantics(tree)
    _name_columns_as_athena(tree)
    return tree.sql(dialect="duckdb")


def _name_columns_as_athena(tree: Any) -> None:
    """Athena names an unnamed result column ``_col0``; sqlglot says ``_col_0``."""
    from sqlglot import exp

    select = tree if isinstance(tree, exp.Select) else tree.find(exp.Select)
    if select is None:
        return
    for column in select.expressions:
        if isinstance(column, exp.Alias) and _UNNAMED.fullmatch(column.alias):
            column.set(
                "alias", exp.to_identifier(column.alias.replace("_col_", "_col"))
            )


def _ends_list(token: Any) -> bool:
    from sqlglot.tokens import TokenType

    if token is None:
        return True
    if token.token_type in (TokenType.R_PAREN, TokenType.SEMICOLON):
        return True
    words = token.text.upper().split()
    return bool(words) and words[0] in _CLAUSE_WORDS


def _refuse_nodes(tree: Any) -> None:
    from sqlglot import exp

    for node in tree.find_all(exp.ILike):
        raise QueryError(
            f"Athena has no ILIKE (near {node.this.sql('trino')}); "
            "compare lower(x) LIKE lower(pattern)"
        )
    for node in tree.find_all(exp.Normalize):
        form = node.args.get("form")
        name = form.name.upper() if form else "NFC"
        if name not in ("NFC", "NFD", "NFKC", "NFKD"):
            raise QueryError(f"normalize() takes NFC, NFD, NFKC or NFKD, not {name}")


def _fix_semantics(tree: Any) -> Any:
    """Rewrite the annotated Trino tree where DuckDB's meaning differs.

    Nodes are visited children first, so a rewritten node keeps its rewritten
    children.
    """
    from sqlglot import exp

    for node in reversed(list(tree.find_all(exp.Expression, bfs=False))):
        replacement = _rewrite(node)
        if replacement is not None:
            node.replace(replacement)
    return tree


def _rewrite(node: Any) -> Any:
    from sqlglot import exp

    if isinstance(node, exp.Extract):
        part = node.this.name.upper()
        if part in _DOW_PARTS:
            return exp.DayOfWeekIso(this=node.expression)
        if part in _YEAR_OF_WEEK_PARTS:
            return exp.YearOfWeek(this=node.expression)
    if isinstance(node, exp.Normalize):
        form = node.args.get("form")
        name = form.name.upper() if form else "NFC"
        return _call(NORMALIZE_UDF, node.this, exp.Literal.string(name))
    if isinstance(node, exp.UnixToTime) and node.args.get("zone") is not None:
        return _call("timezone", node.args["zone"], exp.UnixToTime(this=node.this))
    if isinstance(node, exp.AtTimeZone):
        # Athena's session zone is UTC: a zone-less timestamp is read as UTC.
        zoned = exp.Cast(this=node.this, to=exp.DataType.build("timestamptz"))
        return _call("timezone", node.args["zone"], zoned)
    if isinstance(node, exp.ArgMax | exp.ArgMin) and not node.args.get("count"):
        # DuckDB's arg_max skips a NULL value; Trino's max_by returns it.
        name = "arg_max_null" if isinstance(node, exp.ArgMax) else "arg_min_null"
        return _call(name, node.this, node.expression)
    if isinstance(node, exp.CountIf):
        # DuckDB's count_if is a sum underneath: NULL over no rows, Trino's is 0.
        return exp.Count(this=exp.If(this=node.this, true=exp.Literal.number(1)))
    if isinstance(node, exp.DateDiff):
        unit = node.args.get("unit")
        name = unit.name.lower() if unit is not None else "day"
        return _call("date_sub", exp.Literal.string(name), node.expression, node.this)
    if _is_date_arithmetic(node):
        cast = exp.Cast(this=exp.Null(), to=exp.DataType.build("date"))
        node.replace(cast)
        cast.set("this", node)
    return None


def _call(name: str, *arguments: Any) -> Any:
    from sqlglot import exp

    return exp.Anonymous(this=name, expressions=list(arguments))


def _is_date_arithmetic(node: Any) -> bool:
    from sqlglot import exp

    if not isinstance(node, exp.DateAdd | exp.DateSub | exp.Add | exp.Sub):
        return False
    if node.type is None or node.type.this != exp.DataType.Type.DATE:
        return False
    if isinstance(node, exp.DateAdd | exp.DateSub):
        unit = node.args.get("unit")
        return unit is None or unit.name.upper() in _DATE_UNITS
    return isinstance(node.expression, exp.Interval) or isinstance(
        node.this, exp.Interval
    )


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
