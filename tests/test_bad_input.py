"""Bad input, found by attacking the webhook, compaction and the CLI: each case gets
a clear answer, loses nothing already stored, and never shows a traceback."""

from __future__ import annotations

import json
import math
import socket
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from chalicelib import compaction, layout, queries, updates
from chalicelib.cli import main
from chalicelib.cli.base import one_line
from chalicelib.compaction import Compactor, DayLocked, days_before
from chalicelib.config import Settings
from chalicelib.errors import StorageError
from chalicelib.export import read_export
from chalicelib.ingest import Ingestor
from chalicelib.storage import S3Store, open_store

SECRET = "bad_input_secret"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
CHAT = {"id": -1005550001111, "type": "supergroup", "title": "Grupo"}
DAY = date(2024, 3, 10)
STAMP = 1710111600  # 2024-03-10 23:00 UTC
ARRIVED = datetime(2024, 3, 11, 9, 0, tzinfo=UTC)
UTC_ZONE = ZoneInfo("UTC")


def message(update_id: int, message_id: int, **fields: object) -> dict:
    body = {"message_id": message_id, "chat": CHAT, "date": STAMP, "text": "oi"}
    return {"update_id": update_id, "message": {**body, **fields}}


def line(update_id: int, text: str = "oi") -> str:
    """One update as JSON text, with ``text`` pasted in unescaped."""
    return (
        f'{{"update_id":{update_id},"message":{{"message_id":{update_id},'
        f'"chat":{{"id":{CHAT["id"]}}},"date":{STAMP},"text":"{text}"}}}}'
    )


def post(client, body: bytes):
    return client.http.post("/webhook", headers={SECRET_HEADER: SECRET}, body=body)


def objects(location: str, prefix: str = "") -> dict[str, bytes]:
    store = open_store(location)
    return {item.key: store.get(item.key) for item in store.list(prefix)}


def raw_object(settings: Settings, name: str, body: bytes) -> None:
    open_store(settings.raw).put(f"{layout.day_prefix(DAY)}{name}", body)


# -- the webhook ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "body"),
    [
        ("a byte order mark", b"\xef\xbb\xbf" + line(1).encode()),
        ("UTF-16 with a byte order mark", line(2).encode("utf-16")),
        ("UTF-16 without a byte order mark", line(3).encode("utf-16-le")),
        ("NaN", line(4).replace('"oi"', "NaN").encode()),
        ("-Infinity", line(5).replace('"oi"', "-Infinity").encode()),
        ("a lone high surrogate", line(6, r"a \ud800 b").encode()),
        ("a lone low surrogate", line(7, r"\udc00").encode()),
    ],
)
def test_json_that_only_python_reads_is_quarantined_not_filed_as_an_update(
    client, folder_lake, monkeypatch, case, body
):
    monkeypatch.setenv("TGLAKE_SECRET_TOKEN", SECRET)

    reply = post(client, body)

    assert (reply.status_code, json.loads(reply.body)["outcome"]) == (
        200,
        "quarantined",
    ), case
    assert objects(folder_lake.raw, layout.RAW_PREFIX) == {}
    assert list(objects(folder_lake.raw, layout.QUARANTINE_PREFIX).values()) == [body]


@pytest.mark.parametrize(
    ("case", "text"),
    [
        ("an escaped surrogate pair (an emoji)", r"\ud83d\ude00"),
        ("an escaped backslash before ud800", r"\\ud800"),
        ("an escaped NUL", r"a\u0000b"),
        ("raw UTF-8", "olá 👋"),
    ],
)
def test_json_every_reader_takes_is_stored_as_an_update(
    client, folder_lake, monkeypatch, case, text
):
    monkeypatch.setenv("TGLAKE_SECRET_TOKEN", SECRET)
    body = line(8, text).encode()

    reply = post(client, body)

    assert json.loads(reply.body)["outcome"] == "stored", case
    assert list(objects(folder_lake.raw, layout.RAW_PREFIX).values()) == [body]


@pytest.mark.parametrize(
    ("case", "stamp", "expected"),
    [
        ("its own date", STAMP, DAY),
        (
            "a date a few hours ahead (clock skew)",
            int(ARRIVED.timestamp()) + 7200,
            date(2024, 3, 11),
        ),
        ("a date in the year 3058", (1 << 35) - 1, ARRIVED.date()),
        ("a date a year ahead", STAMP + 366 * 86400, ARRIVED.date()),
    ],
)
def test_an_update_is_filed_under_its_date_unless_that_is_far_after_its_arrival(
    tmp_path, case, stamp, expected
):
    settings = Settings(raw=str(tmp_path / "raw"))
    body = json.dumps(message(9, 9, date=stamp)).encode()

    outcome = Ingestor(settings, open_store(settings.raw)).ingest(body, arrived=ARRIVED)

    assert layout.day_of_key(outcome.key) == expected, case


@pytest.mark.parametrize(
    ("body", "portable"),
    [
        (b'{"a":1}', True),
        (b'{"a":1e400}', True),
        (b'{"a":"\\\\ud800"}', True),
        (b"\xef\xbb\xbf{}", False),
        (b"\xed\xa0\x80", False),
        (b'{"a":Infinity}', False),
        (b"[" * 5000 + b"]" * 5000, False),
    ],
)
def test_decode_portable_refuses_what_duckdb_or_athena_would_not_read(body, portable):
    assert (updates.decode_portable(body) is not None) == portable


def test_decode_portable_answers_for_a_lone_surrogate_at_any_depth():
    # json.loads may reach a depth that json.dumps, called deeper in the stack, cannot.
    limit = sys.getrecursionlimit()
    for depth in range(limit - 150, limit + 10):
        body = b"[" * depth + b'"\\ud800"' + b"]" * depth

        assert updates.decode_portable(body) is None, depth


# -- compaction of hand-made raw objects -----------------------------------------


def test_compaction_skips_and_counts_broken_objects_and_writes_the_rest(folder_lake):
    big = "x" * (1 << 20)
    bodies = {
        "0-1-a.json": b"{not json",
        "0-2-a.json": b"[1, 2, 3]",
        "0-3-a.json": b"",
        "0-4-a.json": b"\xff\xfe\x00garbage",
        "0-5-a.json": json.dumps(
            {"update_id": 5, "message": {"message_id": "x", "chat": "y", "date": "z"}}
        ).encode(),
        "0-6-a.json": json.dumps(message(6, 1 << 64)).encode(),
        "0-7-a.json": json.dumps(message(7, 7, chat={"id": -(1 << 70)})).encode(),
        "0-8-a.json": line(8, r"\ud800 lone").encode(),
        "0-9-a.json": json.dumps(message(9, 9, text="a\x00b")).encode(),
        "0-10-a.json": json.dumps(message(10, 10, text=big)).encode(),
        "0-11-a.json": b"\xef\xbb\xbf" + json.dumps(message(11, 11)).encode(),
        "0-12-a.json": json.dumps(message(12, 12, date=1 << 40)).encode(),
        "not-one-of-ours.json": json.dumps(message(13, 13)).encode(),
        "notes.txt": b"not an update at all",
    }
    for name, body in bodies.items():
        raw_object(folder_lake, name, body)
    enriched = open_store(folder_lake.enriched)

    result = Compactor(folder_lake, open_store(folder_lake.raw), enriched).compact_day(
        DAY
    )

    import pyarrow.parquet as pq

    table = pq.read_table(Path(folder_lake.enriched) / layout.enriched_key(DAY))
    rows = {row["message_id"]: row for row in table.to_pylist()}
    # Four bodies are no update, three are messages without a usable id: all skipped.
    assert (result.objects, result.rows, result.skipped, result.other) == (13, 6, 7, 0)
    assert sorted(rows) == [8, 9, 10, 11, 12, 13]
    assert rows[8]["text"].encode("utf-8")
    assert rows[9]["text"] == "a\x00b" and rows[10]["text"] == big
    assert rows[12]["sent_at"] is None


@pytest.mark.parametrize(
    ("case", "lease"),
    [
        ("an infinite expiry", '{"owner": "abc", "expires": 1e999}'),
        ("a NaN expiry", '{"owner": "abc", "expires": NaN}'),
        ("an expiry a day away", None),
        ("an owner that is not one of ours", '{"owner": 5, "expires": 1e18}'),
        ("an expiry of 400 digits", '{"owner": "abc", "expires": 1%s}' % ("0" * 400)),
        ("nesting too deep to read", "[" * 100_000 + "]" * 100_000),
    ],
)
def test_a_lease_no_run_could_have_written_is_taken_over(folder_lake, case, lease):
    enriched = open_store(folder_lake.enriched)
    lease = lease or json.dumps({"owner": "abc", "expires": time.time() + 86400})
    enriched.put(layout.lock_key(DAY), lease.encode())
    worker = Compactor(folder_lake, open_store(folder_lake.raw), enriched)

    result = worker.compact_day(DAY)

    assert result.day == DAY, case
    assert not enriched.exists(layout.lock_key(DAY))


def test_a_takeover_marker_of_400_digits_counts_as_expired(folder_lake):
    enriched = open_store(folder_lake.enriched)
    enriched.put(layout.lock_key(DAY), b'{"owner": "ab", "expires": 1}')
    marker = '{"owner": "cd", "expires": 1%s}' % ("0" * 400)
    enriched.put(layout.takeover_key(DAY, "ab"), marker.encode())
    worker = Compactor(folder_lake, open_store(folder_lake.raw), enriched)

    with pytest.raises(DayLocked, match="taking over"):
        worker.compact_day(DAY)
    result = worker.compact_day(DAY)

    assert result.day == DAY
    assert not enriched.exists(layout.takeover_key(DAY, "ab"))


def test_a_live_lease_still_keeps_a_second_run_out(folder_lake):
    enriched = open_store(folder_lake.enriched)
    live = {"owner": "abc", "expires": time.time() + compaction.LEASE_SECONDS}
    enriched.put(layout.lock_key(DAY), json.dumps(live).encode())

    with pytest.raises(DayLocked):
        Compactor(folder_lake, open_store(folder_lake.raw), enriched).compact_day(DAY)


@pytest.mark.parametrize(
    ("days", "expected"),
    [(1, date(2024, 3, 9)), (800_000, date.min), (99_999_999_999, date.min)],
)
def test_days_before_never_overflows(days, expected):
    assert days_before(DAY, days) == expected


# -- the local engine over broken raw objects ------------------------------------


def test_broken_raw_objects_do_not_break_the_queries_over_the_raw_layer(folder_lake):
    raw_object(folder_lake, "0-1-a.json", json.dumps(message(1, 1)).encode())
    member = message(2, 2, new_chat_members=[{"id": 77}])
    raw_object(folder_lake, "0-2-a.json", json.dumps(member).encode())
    broken = {
        "0-3-a.json": b"{not json",
        "0-4-a.json": b"\xef\xbb\xbf" + json.dumps(message(4, 4)).encode(),
        "0-5-a.json": json.dumps(message(5, 5)).encode("utf-16-le"),
        "0-6-a.json": line(6, r"\ud800").encode(),
        "0-7-a.json": json.dumps(message(7, 7, new_chat_members="abc")).encode(),
        "0-8-a.json": json.dumps(message(8, 8, new_chat_members=[1, None])).encode(),
    }
    for name, body in broken.items():
        raw_object(folder_lake, name, body)

    joins = queries.run_local("joins_leaves_per_day", folder_lake)
    days = queries.run_local("messages_per_day", folder_lake, {"table": "all_messages"})

    assert [row[1:] for row in joins.rows] == [(1, 0)]
    assert sum(row[1] for row in days.rows) == 4


# -- the command line --------------------------------------------------------------


def invoke(*args: str, env: dict[str, str] | None = None):
    result = CliRunner().invoke(main, list(args), env=env)
    assert not isinstance(result.exception, Exception | KeyboardInterrupt) or (
        isinstance(result.exception, SystemExit)
    ), result.exception
    assert "Traceback" not in result.output
    return result


def error_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.mark.parametrize(
    ("case", "args", "env", "expected"),
    [
        (
            "a purge span beyond the calendar",
            ["purge", "--older-than", "99999999999", "--dry-run"],
            {},
            "0 raw objects",
        ),
        (
            "a raw retention beyond the calendar",
            ["compact", "--yesterday"],
            {"TGLAKE_RAW_RETENTION_DAYS": "99999999999"},
            "objects=0",
        ),
        (
            "an enriched retention beyond the calendar",
            ["purge", "--layer", "enriched", "--dry-run"],
            {"TGLAKE_ENRICHED_RETENTION_DAYS": "800000"},
            "0 enriched objects",
        ),
    ],
)
def test_huge_day_counts_mean_keep_everything_not_a_crash(
    folder_lake, case, args, env, expected
):
    result = invoke(*args, env=env)

    assert result.exit_code == 0, (case, result.output)
    assert expected in result.output


@pytest.mark.parametrize(
    ("case", "args", "expected"),
    [
        (
            "a negative limit",
            ["query", "top_users", "-p", "limit=-1"],
            "limit: a whole number 0 or more is expected, not '-1'",
        ),
        (
            "a negative user id",
            ["query", "user_report", "-p", "user_id=-5"],
            "a whole number 0 or more",
        ),
        (
            "a keyword of 100,000 characters",
            ["query", "keyword_search", "-p", "keyword=" + "a" * 100_000],
            "longer than 1000 characters, not '" + "a" * 60 + "…'",
        ),
        (
            "a query name of 100,000 characters",
            ["query", "q" * 100_000],
            "no query named 'qqqq",
        ),
    ],
)
def test_bad_query_values_end_as_one_short_line(folder_lake, case, args, expected):
    result = invoke(*args)

    assert result.exit_code == 1, case
    assert expected in error_line(result)
    assert len(error_line(result)) <= 1000 + len("Error: ")


@pytest.mark.parametrize(
    ("case", "args", "expected"),
    [
        ("query", ["query", "summary"], "TGLAKE_RAW is"),
        ("purge", ["purge", "--older-than", "3", "--dry-run"], "not a folder"),
        ("forget", ["forget", "--user", "1", "--dry-run"], "not a folder"),
    ],
)
def test_a_raw_location_that_is_a_file_is_an_error_not_an_empty_lake(
    tmp_path, case, args, expected
):
    afile = tmp_path / "afile"
    afile.write_text("{}")
    env = {"TGLAKE_RAW": str(afile), "TGLAKE_ENRICHED": str(tmp_path / "enriched")}

    result = invoke(*args, env=env)

    assert result.exit_code == 1, case
    assert expected in error_line(result)


def test_one_folder_for_both_layers_is_refused_before_anything_is_deleted(tmp_path):
    raw = tmp_path / "lake"
    settings = Settings(raw=str(raw), enriched=str(tmp_path / "other"))
    Ingestor(settings, open_store(settings.raw)).ingest(
        json.dumps(message(1, 1)).encode()
    )
    before = sorted(path.name for path in raw.rglob("*.json"))
    env = {"TGLAKE_RAW": str(raw), "TGLAKE_ENRICHED": f"{tmp_path}/./lake/"}

    result = invoke("compact", "--date", DAY.isoformat(), env=env)

    assert result.exit_code == 1
    assert "TGLAKE_RAW and TGLAKE_ENRICHED are the same place" in error_line(result)
    assert sorted(path.name for path in raw.rglob("*.json")) == before


@pytest.mark.parametrize("zone", ["Etc", "America", "A" * 300])
def test_a_time_zone_that_names_no_zone_file_is_one_line(tmp_path, zone):
    env = {"TGLAKE_RAW": str(tmp_path / "raw"), "TGLAKE_TIMEZONE": zone}

    result = invoke("compact", "--date", DAY.isoformat(), env=env)

    assert result.exit_code == 1
    assert "TGLAKE_TIMEZONE must be an IANA time zone name" in error_line(result)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("AWS_DEFAULT_REGION", "bad region!"), ("AWS_ENDPOINT_URL", "not a url")],
)
def test_a_malformed_aws_setting_is_one_line(tmp_path, monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    env = {"TGLAKE_RAW": "s3://tglake-raw", "TGLAKE_ENRICHED": str(tmp_path)}

    result = invoke("compact", "--date", DAY.isoformat(), env=env)

    assert result.exit_code == 1
    assert "cannot use S3" in error_line(result)


def test_a_demo_folder_that_cannot_be_created_is_one_line(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("")

    result = invoke("demo", "--folder", str(afile / "sub"))

    assert result.exit_code == 1
    assert "cannot create" in error_line(result)


def test_ctrl_c_inside_duckdb_ends_as_aborted_not_a_traceback(folder_lake, monkeypatch):
    def interrupted(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Query interrupted")

    monkeypatch.setattr(queries, "run_local", interrupted)

    result = invoke("query", "summary")

    assert result.exit_code == 1
    assert result.output.strip().endswith("Aborted!")


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "DuckDB: Binder Error: LIMIT cannot be negative\n\nLINE 1: LIMIT -1\n ^",
            "DuckDB: Binder Error: LIMIT cannot be negative",
        ),
        ("first\nsecond", "first second"),
        ("x" * 5000, "x" * 999 + "…"),
    ],
)
def test_one_line_keeps_the_first_paragraph_and_bounds_its_length(message, expected):
    assert one_line(message) == expected


# -- import-export -----------------------------------------------------------------


def export(tmp_path: Path, chat_id: int, messages: list[dict], kind: str) -> Path:
    path = tmp_path / "result.json"
    document = {"name": "Grupo", "type": kind, "id": chat_id, "messages": messages}
    path.write_text(json.dumps(document))
    return path


def exported(message_id: int, **fields: object) -> dict:
    base = {
        "id": message_id,
        "type": "message",
        "date_unixtime": str(STAMP),
        "from": "A",
        "from_id": "user5",
        "text": "oi",
    }
    return {**base, **fields}


@pytest.mark.parametrize("kind", ["private_supergroup", "private_group"])
def test_an_export_with_a_lone_surrogate_and_odd_dates_imports_the_rest(
    tmp_path, folder_lake, kind
):
    messages = [
        exported(1, text="\ud800 lone"),
        exported(2, date_unixtime="²"),
        exported(3, date_unixtime="99999999999999999999"),
        exported(4, edited_unixtime="²"),
    ]
    path = export(tmp_path, 5550001111, messages, kind)

    result = invoke("import-export", str(path), "--no-compact")

    assert result.exit_code == 0, result.output
    assert "written=2" in result.output and "2 no date_unixtime" in result.output
    stored = objects(folder_lake.raw, layout.RAW_PREFIX).values()
    assert all(updates.decode_portable(body) is not None for body in stored)
    assert any("\ufffd lone" in body.decode() for body in stored)


def test_an_export_nested_too_deeply_is_one_line(tmp_path, folder_lake):
    path = tmp_path / "result.json"
    path.write_text("[" * 100_000 + "]" * 100_000)

    result = invoke("import-export", str(path))

    assert result.exit_code == 1
    assert "nested too deeply" in error_line(result)


def test_an_exported_chat_whose_id_no_bot_api_chat_can_have_is_skipped(tmp_path):
    path = export(tmp_path, 10**30, [exported(1)], "private_supergroup")

    chats, skipped = read_export(path)

    assert (chats, skipped) == ([], 1)


# -- S3 that cannot be reached ----------------------------------------------------


def refused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_s3_endpoint_fails_within_seconds(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "nonsense")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "nonsense")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{refused_port()}")
    store = S3Store("tglake-unreachable", "raw")
    started = time.monotonic()

    with pytest.raises(StorageError, match="EndpointConnectionError"):
        store.get("state/poll/0.json")

    # Five retries took up to 31 s of back-off; three calls take at most 3 s.
    assert time.monotonic() - started < 8
    assert not math.isnan(started)
