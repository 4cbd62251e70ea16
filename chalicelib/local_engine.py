"""DuckDB over the lake's local folders, holding the same tables Athena does.

``messages`` reads the enriched Parquet days, ``raw_updates`` the raw JSON files (one
row per file, as Athena reads one row per line), and ``all_messages`` is the view of
``athena_sql/create_view_all_messages.sql`` translated. The connection answers like
Athena: UTC session zone, integer division, and the Hive partition ``context_date``
read as a string.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from chalicelib import layout
from chalicelib.config import Settings
from chalicelib.errors import QueryError

log = logging.getLogger(__name__)

MESSAGES = "messages"
RAW = "raw_updates"
VIEW = "all_messages"
PARTITION_TYPE = "varchar"
# Athena's column types as sqlglot's Trino names them, and as DuckDB creates them.
_TRINO_TYPES = {"string": "varchar", "int": "integer"}
_DUCKDB_TYPES = {
    "bigint": "BIGINT",
    "integer": "INTEGER",
    "boolean": "BOOLEAN",
    "varchar": "VARCHAR",
    "timestamp": "TIMESTAMP",
    "date": "DATE",
}


def message_columns() -> dict[str, str]:
    """The enriched table's columns and Trino types, from ``schema.py``."""
    from chalicelib.schema import ATHENA_TYPES, SCHEMA

    columns = {}
    for column in SCHEMA:
        athena = ATHENA_TYPES[column.type]
        columns[column.name] = _TRINO_TYPES.get(athena, athena)
    return columns


class LocalEngine:
    """One DuckDB connection over a lake in local folders."""

    def __init__(self, settings: Settings) -> None:
        for location in (settings.raw, settings.enriched):
            if location.startswith("s3://"):
                raise QueryError(
                    f"the local engine reads folders, and {location} is on S3; "
                    "use --engine athena"
                )
        self.settings = settings
        self.enriched = Path(settings.enriched) / layout.RAW_PREFIX
        self.raw = Path(settings.raw) / layout.RAW_PREFIX
        self._connection: Any = None
        self._views: dict[str, dict[str, str]] = {}

    def __enter__(self) -> LocalEngine:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection, if one was opened."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def schema(self) -> dict[str, dict[str, str]]:
        """Every table and view the engine holds, with column types."""
        messages = {**message_columns(), layout.PARTITION: PARTITION_TYPE}
        raw = {"line": "varchar", layout.PARTITION: PARTITION_TYPE}
        return {MESSAGES: messages, RAW: raw, **self._views}

    @property
    def connection(self) -> Any:
        """The DuckDB connection, opened with Athena's settings and tables."""
        if self._connection is None:
            self._connection = self._open()
        return self._connection

    def create_view(self, name: str, select: str) -> None:
        """Create a view from DuckDB SQL; it joins the schema used for translation."""
        import duckdb

        try:
            self.connection.execute(f'CREATE OR REPLACE VIEW "{name}" AS {select}')
        except duckdb.Error as error:
            raise QueryError(f"view {name} failed on DuckDB: {error}") from None
        described = self.connection.execute(f'DESCRIBE "{name}"').fetchall()
        self._views[name] = {row[0]: _trino_type(row[1]) for row in described}

    def run(self, sql: str) -> Any:
        """Run translated SQL and return a ``QueryResult``."""
        import duckdb

        from chalicelib.queries import QueryResult

        started = time.perf_counter()
        try:
            cursor = self.connection.execute(sql)
            rows = cursor.fetchall()
        except duckdb.Error as error:
            raise QueryError(f"DuckDB: {error}") from None
        columns = [item[0] for item in cursor.description]
        log.info(
            "local query rows=%d seconds=%.2f", len(rows), time.perf_counter() - started
        )
        return QueryResult(columns, [tuple(row) for row in rows])

    def _open(self) -> Any:
        import duckdb

        from chalicelib import translate

        connection = duckdb.connect(":memory:")
        translate.prepare(connection)
        connection.execute(f'CREATE VIEW "{MESSAGES}" AS {self._messages_sql()}')
        connection.execute(f'CREATE VIEW "{RAW}" AS {self._raw_sql()}')
        return connection

    def _messages_sql(self) -> str:
        columns = message_columns()
        pattern = f"{layout.PARTITION}=*/{layout.ENRICHED_FILE}"
        if not any(self.enriched.glob(pattern)):
            return _empty({**columns, layout.PARTITION: PARTITION_TYPE})
        files = _quote(f"{self.enriched.as_posix()}/{pattern}")
        # Athena reads the Parquet UTC timestamp as a zone-less timestamp.
        select = ", ".join(
            f'CAST("{name}" AS TIMESTAMP) AS "{name}"'
            if kind == "timestamp"
            else f'"{name}"'
            for name, kind in columns.items()
        )
        return (
            f'SELECT {select}, "{layout.PARTITION}" FROM read_parquet({files}, '
            f"hive_partitioning = true, "
            f"hive_types = {{'{layout.PARTITION}': 'VARCHAR'}})"
        )

    def _raw_sql(self) -> str:
        pattern = f"{layout.PARTITION}=*/*{layout.RAW_SUFFIX}"
        if not any(self.raw.glob(pattern)):
            return _empty({"line": "varchar", layout.PARTITION: PARTITION_TYPE})
        files = _quote(f"{self.raw.as_posix()}/{pattern}")
        day = _quote(rf"{layout.PARTITION}=(\d{{4}}-\d{{2}}-\d{{2}})/[^/]*$")
        # Athena's JSON functions give NULL for a line that is not JSON; DuckDB's
        # fail the whole query, so such a file (placed by hand, or stored before
        # the webhook quarantined them) is left out here.
        return (
            f'SELECT content AS "line", regexp_extract(filename, {day}, 1) '
            f'AS "{layout.PARTITION}" FROM read_text({files}) '
            "WHERE json_valid(content)"
        )


def _empty(columns: Mapping[str, str]) -> str:
    select = ", ".join(
        f'CAST(NULL AS {_DUCKDB_TYPES[kind]}) AS "{name}"'
        for name, kind in columns.items()
    )
    return f"SELECT {select} WHERE false"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _trino_type(duckdb_type: str) -> str:
    names = {value: key for key, value in _DUCKDB_TYPES.items()}
    return names.get(duckdb_type.upper(), "varchar")
