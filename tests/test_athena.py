"""The Athena runner against moto (success) and botocore's Stubber (the rest)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import boto3
import pytest
import requests
from botocore.stub import Stubber

from chalicelib import queries
from chalicelib.athena import MAX_DELAY, AthenaRunner
from chalicelib.config import Settings
from chalicelib.errors import QueryError

SETTINGS = Settings(
    athena_database="lake_db",
    athena_workgroup="analysts",
    athena_output="s3://tglake-results/athena/",
)
COLUMNS = [
    {"Name": "day", "Type": "date"},
    {"Name": "messages", "Type": "bigint"},
    {"Name": "share", "Type": "double"},
    {"Name": "sent_at", "Type": "timestamp"},
    {"Name": "bot", "Type": "boolean"},
    {"Name": "cost", "Type": "decimal"},
]


def cells(*values: str | None) -> dict:
    return {"Data": [{} if v is None else {"VarCharValue": v} for v in values]}


HEADER = cells("day", "messages", "share", "sent_at", "bot", "cost")


@pytest.fixture
def athena(aws):
    client = boto3.client("athena", region_name="us-east-1")
    client.create_work_group(Name="analysts", Configuration={})
    return client


def test_a_query_on_moto_returns_typed_rows_without_the_header(athena):
    expected = {
        "results": [
            {
                "rows": [
                    HEADER,
                    cells(
                        "2024-06-09",
                        "4",
                        "27.8",
                        "2024-06-10 02:30:00.000",
                        "true",
                        "1.50",
                    ),
                    cells("2024-06-10", "0", None, None, "false", None),
                ],
                "column_info": COLUMNS,
            }
        ]
    }
    requests.post(
        "http://motoapi.amazonaws.com/moto-api/static/athena/query-results",
        json=expected,
        timeout=5,
    )

    result = queries.run_athena(
        "messages_per_day", SETTINGS, runner=AthenaRunner(SETTINGS, client=athena)
    )

    assert result.columns == ["day", "messages", "share", "sent_at", "bot", "cost"]
    assert result.rows == [
        (
            date(2024, 6, 9),
            4,
            27.8,
            datetime(2024, 6, 10, 2, 30),
            True,
            Decimal("1.50"),
        ),
        (date(2024, 6, 10), 0, None, None, False, None),
    ]
    executions = athena.list_query_executions(WorkGroup="analysts")
    assert len(executions["QueryExecutionIds"]) == 1
    done = athena.get_query_execution(
        QueryExecutionId=executions["QueryExecutionIds"][0]
    )["QueryExecution"]
    assert done["QueryExecutionContext"]["Database"] == "lake_db"
    assert "context_date BETWEEN '1970-01-01' AND '9999-12-31'" in done["Query"]


def stubbed() -> tuple[AthenaRunner, Stubber, list[float]]:
    client = boto3.client(
        "athena",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    waits: list[float] = []
    runner = AthenaRunner(SETTINGS, client=client, sleep=waits.append)
    return runner, Stubber(client), waits


def started(stub: Stubber, *, database: bool = True) -> None:
    request = {
        "QueryString": "SELECT 1",
        "WorkGroup": "analysts",
        "ResultConfiguration": {"OutputLocation": "s3://tglake-results/athena/"},
    }
    if database:
        request["QueryExecutionContext"] = {"Database": "lake_db"}
    stub.add_response("start_query_execution", {"QueryExecutionId": "q-1"}, request)


def state(stub: Stubber, name: str, **status: object) -> None:
    stub.add_response(
        "get_query_execution",
        {
            "QueryExecution": {
                "QueryExecutionId": "q-1",
                "Status": {"State": name, **status},
            }
        },
        {"QueryExecutionId": "q-1"},
    )


def test_a_failed_query_reports_athenas_reason():
    runner, stub, _ = stubbed()
    started(stub)
    state(stub, "RUNNING")
    state(
        stub,
        "FAILED",
        StateChangeReason="generic",
        AthenaError={"ErrorMessage": "line 1:8: Column 'x' cannot be resolved"},
    )

    with stub, pytest.raises(QueryError) as error:
        runner.run("SELECT 1")

    assert str(error.value) == (
        "Athena query q-1 failed: line 1:8: Column 'x' cannot be resolved"
    )


def test_the_wait_backs_off_up_to_a_ceiling_then_pages_through_results():
    runner, stub, waits = stubbed()
    started(stub)
    for _ in range(7):
        state(stub, "RUNNING")
    state(stub, "SUCCEEDED")
    info = {"ColumnInfo": [{"Name": "n", "Type": "integer"}]}
    first = {"ResultSet": {"Rows": [cells("n"), cells("1")], "ResultSetMetadata": info}}
    stub.add_response(
        "get_query_results",
        {**first, "NextToken": "page-2"},
        {"QueryExecutionId": "q-1", "MaxResults": 1000},
    )
    stub.add_response(
        "get_query_results",
        {"ResultSet": {"Rows": [cells("2")], "ResultSetMetadata": info}},
        {"QueryExecutionId": "q-1", "MaxResults": 1000, "NextToken": "page-2"},
    )

    with stub:
        result = runner.run("SELECT 1")

    assert waits == [0.25, 0.5, 1.0, 2.0, 4.0, MAX_DELAY, MAX_DELAY]
    assert result.rows == [(1,), (2,)]


def test_a_refused_start_is_one_clear_error():
    runner, stub, _ = stubbed()
    stub.add_client_error(
        "start_query_execution",
        service_error_code="InvalidRequestException",
        service_message="WorkGroup analysts is disabled.",
    )

    with stub, pytest.raises(QueryError, match="WorkGroup analysts is disabled"):
        runner.run("SELECT 1")


def test_a_cancelled_query_says_so():
    runner, stub, _ = stubbed()
    started(stub)
    state(stub, "CANCELLED")

    with stub, pytest.raises(QueryError, match="q-1 cancelled: Athena gave no reason"):
        runner.run("SELECT 1")


def test_a_query_past_its_timeout_is_stopped():
    runner, stub, _ = stubbed()
    runner.timeout = 0
    started(stub)
    state(stub, "QUEUED")
    stub.add_response("stop_query_execution", {}, {"QueryExecutionId": "q-1"})

    with (
        stub,
        pytest.raises(QueryError, match="still queued after 0 s; it was stopped"),
    ):
        runner.run("SELECT 1")
    stub.assert_no_pending_responses()


def test_creating_the_database_runs_outside_any_database():
    runner, stub, _ = stubbed()
    request = {
        "QueryString": "CREATE DATABASE IF NOT EXISTS lake_db\n",
        "WorkGroup": "analysts",
        "ResultConfiguration": {"OutputLocation": "s3://tglake-results/athena/"},
    }
    stub.add_response("start_query_execution", {"QueryExecutionId": "q-1"}, request)
    state(stub, "SUCCEEDED")
    stub.add_response(
        "get_query_results",
        {"ResultSet": {"Rows": [], "ResultSetMetadata": {"ColumnInfo": []}}},
        {"QueryExecutionId": "q-1", "MaxResults": 1000},
    )

    with stub:
        result = queries.run_athena("create_database", SETTINGS, runner=runner)

    assert result.rows == []


def test_sql_athena_would_refuse_is_stopped_before_it_costs_a_query(tmp_path):
    runner, stub, _ = stubbed()

    with stub, pytest.raises(QueryError, match="parameter limit"):
        queries.run_athena("top_users", SETTINGS, {"limit": "1 OR 1"}, runner=runner)
    stub.assert_no_pending_responses()
