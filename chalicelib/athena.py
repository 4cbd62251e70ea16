"""Athena through boto3: start a query, wait with backoff, page through its rows.

Workgroup, database and result location come from the settings
(``TGLAKE_ATHENA_WORKGROUP``, ``TGLAKE_ATHENA_DATABASE``, ``TGLAKE_ATHENA_OUTPUT``;
an empty output leaves it to the workgroup). Athena returns every value as text;
the rows are turned back into Python values by the column types it reports.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from chalicelib.config import Settings
from chalicelib.errors import QueryError

log = logging.getLogger(__name__)

FIRST_DELAY = 0.25
MAX_DELAY = 5.0
TIMEOUT_SECONDS = 30 * 60
PAGE_SIZE = 1000
_INTEGERS = frozenset({"tinyint", "smallint", "integer", "int", "bigint"})
_FLOATS = frozenset({"double", "float", "real"})


class AthenaRunner:
    """Runs SQL on Athena with the lake's workgroup, database and output location."""

    def __init__(
        self,
        settings: Settings,
        *,
        client: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self.settings = settings
        self._client = client
        self.sleep = sleep
        self.timeout = timeout

    @property
    def client(self) -> Any:
        """The boto3 Athena client, created on first use."""
        if self._client is None:
            import boto3

            self._client = boto3.client("athena")
        return self._client

    def run(self, sql: str, *, in_database: bool = True) -> Any:
        """Run one statement and return its ``QueryResult``; raises ``QueryError``."""
        started = time.perf_counter()
        execution_id = self.start(sql, in_database=in_database)
        self.wait(execution_id)
        result = self.results(execution_id)
        log.info(
            "athena query id=%s rows=%d seconds=%.1f",
            execution_id,
            len(result.rows),
            time.perf_counter() - started,
        )
        return result

    def start(self, sql: str, *, in_database: bool = True) -> str:
        """Submit a statement; returns its execution id."""
        request: dict[str, Any] = {
            "QueryString": sql,
            "WorkGroup": self.settings.athena_workgroup,
        }
        if in_database:
            request["QueryExecutionContext"] = {
                "Database": self.settings.athena_database
            }
        if self.settings.athena_output:
            request["ResultConfiguration"] = {
                "OutputLocation": self.settings.athena_output
            }
        answer = self._call("start_query_execution", **request)
        return answer["QueryExecutionId"]

    def wait(self, execution_id: str) -> dict[str, Any]:
        """Poll until the query ends, doubling the delay up to a few seconds."""
        delay = FIRST_DELAY
        deadline = time.monotonic() + self.timeout
        while True:
            answer = self._call("get_query_execution", QueryExecutionId=execution_id)
            execution = answer["QueryExecution"]
            status = execution["Status"]
            state = status["State"]
            if state == "SUCCEEDED":
                return execution
            if state in ("FAILED", "CANCELLED"):
                raise QueryError(
                    f"Athena query {execution_id} {state.lower()}: {_reason(status)}"
                )
            if time.monotonic() >= deadline:
                self._call("stop_query_execution", QueryExecutionId=execution_id)
                raise QueryError(
                    f"Athena query {execution_id} still {state.lower()} after "
                    f"{self.timeout:.0f} s; it was stopped"
                )
            self.sleep(delay)
            delay = min(delay * 2, MAX_DELAY)

    def results(self, execution_id: str) -> Any:
        """Every row of a finished query, page after page."""
        from chalicelib.queries import QueryResult

        columns: list[str] = []
        types: list[str] = []
        rows: list[tuple[Any, ...]] = []
        token = None
        while True:
            request = {"QueryExecutionId": execution_id, "MaxResults": PAGE_SIZE}
            if token:
                request["NextToken"] = token
            page = self._call("get_query_results", **request)
            result_set = page["ResultSet"]
            if not columns:
                info = result_set.get("ResultSetMetadata", {}).get("ColumnInfo", [])
                columns = [column["Name"] for column in info]
                types = [column.get("Type", "varchar").lower() for column in info]
            for row in result_set.get("Rows", []):
                values = [cell.get("VarCharValue") for cell in row.get("Data", [])]
                # A SELECT's first row repeats the column names.
                if not rows and token is None and values == columns:
                    continue
                pairs = zip(values, types, strict=False)
                rows.append(tuple(_value(text, kind) for text, kind in pairs))
            token = page.get("NextToken")
            if not token:
                return QueryResult(columns, rows)

    def _call(self, operation: str, **request: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, operation)(**request)
        except ClientError as error:
            message = error.response.get("Error", {}).get("Message", str(error))
            raise QueryError(f"Athena refused {operation}: {message}") from None
        except BotoCoreError as error:
            raise QueryError(f"cannot reach Athena: {error}") from None


def _reason(status: dict[str, Any]) -> str:
    error = status.get("AthenaError", {})
    reason = error.get("ErrorMessage") or status.get("StateChangeReason")
    return reason or "Athena gave no reason"


def _value(text: str | None, kind: str) -> Any:
    """One Athena cell as a Python value."""
    if text is None:
        return None
    base = kind.split("(")[0].strip()
    try:
        if base in _INTEGERS:
            return int(text)
        if base in _FLOATS:
            return float(text)
        if base == "decimal":
            return Decimal(text)
        if base == "boolean":
            return text == "true"
        if base == "date":
            return date.fromisoformat(text)
        if base.startswith("timestamp"):
            # "2024-06-02 03:46:40.000", with " UTC" or a zone name when zoned.
            return datetime.fromisoformat(" ".join(text.split(" ")[:2]))
    except (ValueError, IndexError):
        return text
    return text
