"""The webhook through Chalice's test client: what is stored and what Telegram hears."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from chalicelib import layout
from chalicelib.config import Settings
from chalicelib.storage import open_store

SECRET = "s3cret_Token-for-tests"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
TEXT = "Olá, segredo do grupo às 23h"
FIRST_NAME = "Joaquina"


def update(update_id: int = 7001, chat_id: int = -1001234567890, **extra) -> bytes:
    """A group text message as Telegram sends it (one line of JSON)."""
    message = {
        "message_id": 41,
        "from": {"id": 5551, "is_bot": False, "first_name": FIRST_NAME},
        "chat": {"id": chat_id, "title": "Grupo de teste", "type": "supergroup"},
        "date": 1710111600,
        "text": TEXT,
        **extra,
    }
    return json.dumps({"update_id": update_id, "message": message}).encode()


def stored(settings: Settings, prefix: str = "") -> dict[str, bytes]:
    """Every object of the raw layer, key -> bytes."""
    store = open_store(settings.raw)
    return {item.key: store.get(item.key) for item in store.list(prefix)}


@pytest.fixture(params=["folder_lake", "s3_lake"])
def lake(request: pytest.FixtureRequest) -> Settings:
    """The same test against a local folder and against moto S3."""
    return request.getfixturevalue(request.param)


def test_every_sample_is_stored_byte_for_byte_once_and_only_with_the_secret(
    client, lake, samples, monkeypatch
):
    monkeypatch.setenv("TGLAKE_SECRET_TOKEN", SECRET)

    refused = [
        client.http.post("/webhook", headers=headers, body=path.read_bytes())
        for path in samples
        for headers in ({}, {SECRET_HEADER: "wrong"})
    ]
    nothing_yet = stored(lake)
    accepted = [
        client.http.post("/webhook", headers={SECRET_HEADER: SECRET}, body=body)
        for body in [path.read_bytes() for path in samples] * 2
    ]

    assert {reply.status_code for reply in refused} == {401}
    assert nothing_yet == {}
    assert {reply.status_code for reply in accepted} == {200}
    objects = stored(lake)
    assert all(key.startswith(layout.RAW_PREFIX) for key in objects)
    assert sorted(objects.values()) == sorted(path.read_bytes() for path in samples)


def test_an_update_is_filed_under_its_message_day_in_the_lake_time_zone(
    client, folder_lake, monkeypatch
):
    monkeypatch.setenv("TGLAKE_TIMEZONE", "America/Sao_Paulo")
    # 2024-03-11 02:00 UTC is 2024-03-10 23:00 in São Paulo.
    body = json.dumps(
        {
            "update_id": 1,
            "message": {"message_id": 2, "chat": {"id": 3}, "date": 1710122400},
        }
    ).encode()

    reply = client.http.post("/webhook", body=body)

    assert reply.status_code == 200
    assert [key.split("/")[1] for key in stored(folder_lake)] == [
        "context_date=2024-03-10"
    ]


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "application/json",
        "application/json; charset=utf-8",
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/octet-stream",
        "multipart/form-data; boundary=x",
        "not a media type",
    ],
)
def test_any_content_type_is_accepted_and_stored(client, folder_lake, content_type):
    headers = {} if content_type is None else {"Content-Type": content_type}

    reply = client.http.post("/webhook", headers=headers, body=update())

    assert reply.status_code == 200
    assert list(stored(folder_lake).values()) == [update()]


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2, 3]",
        b'"a string"',
        b"null",
        b"",
        b"\xff\xfe\x00garbage",
        b'{"message": {"text": "no update_id"}}',
    ],
)
def test_a_body_that_is_not_an_update_is_quarantined_and_answered_200(
    client, folder_lake, body
):
    reply = client.http.post(
        "/webhook", headers={"Content-Type": "application/json"}, body=body
    )

    assert reply.status_code == 200
    assert json.loads(reply.body)["outcome"] == "quarantined"
    ((key, kept),) = stored(folder_lake).items()
    assert key.startswith(layout.QUARANTINE_PREFIX)
    assert kept == body


def test_an_unauthenticated_non_update_is_refused_not_quarantined(
    client, folder_lake, monkeypatch
):
    monkeypatch.setenv("TGLAKE_SECRET_TOKEN", SECRET)

    reply = client.http.post("/webhook", body=b"{not json")

    assert reply.status_code == 401
    assert stored(folder_lake) == {}


def test_a_body_over_the_limit_gets_413_and_nothing_is_stored(
    client, folder_lake, monkeypatch
):
    monkeypatch.setenv("TGLAKE_MAX_BODY_BYTES", "300")
    big = update(caption="x" * 400)

    too_big = client.http.post("/webhook", body=big)
    small = client.http.post("/webhook", body=update())

    assert too_big.status_code == 413
    assert small.status_code == 200
    assert list(stored(folder_lake).values()) == [update()]


def test_a_missing_bucket_answers_503_with_retry_after_and_the_retry_succeeds(
    client, s3_lake
):
    import boto3

    s3 = boto3.client("s3")
    bucket = s3_lake.raw.removeprefix("s3://").split("/")[0]
    s3.delete_bucket(Bucket=bucket)

    failed = client.http.post("/webhook", body=update())
    s3.create_bucket(Bucket=bucket)
    retried = client.http.post("/webhook", body=update())

    assert failed.status_code == 503
    assert int(failed.headers["Retry-After"]) > 0
    assert b"Traceback" not in failed.body
    assert retried.status_code == 200
    assert list(stored(s3_lake).values()) == [update()]


def test_a_failing_disk_answers_503_and_leaves_no_partial_file(
    client, folder_lake, monkeypatch
):
    real_fsync = os.fsync

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    failed = client.http.post("/webhook", body=update())
    monkeypatch.setattr(os, "fsync", real_fsync)
    retried = client.http.post("/webhook", body=update())

    assert failed.status_code == 503
    assert "Retry-After" in failed.headers
    assert retried.status_code == 200
    files = [p for p in Path(folder_lake.raw).rglob("*") if p.is_file()]
    assert [p.read_bytes() for p in files] == [update()]


def test_one_info_line_per_update_with_facts_and_no_text_names_or_secret(
    client, folder_lake, monkeypatch, caplog
):
    monkeypatch.setenv("TGLAKE_SECRET_TOKEN", SECRET)
    monkeypatch.setenv("TGLAKE_CHAT_IDS", "-1001234567890")
    caplog.set_level(logging.INFO, logger="chalicelib")
    bodies = [update(1), update(2, chat_id=99), b"{oops " + TEXT.encode()]

    for body in bodies:
        client.http.post("/webhook", headers={SECRET_HEADER: SECRET}, body=body)
    client.http.post("/webhook", headers={SECRET_HEADER: "nope" + SECRET}, body=b"{}")

    lines = [r.getMessage() for r in caplog.records if r.name == "chalicelib.ingest"]
    assert len([line for line in lines if line.startswith("webhook update_id")]) == 3
    stored_line = next(line for line in lines if "update_id=1 " in line)
    for fact in ("chat_id=-1001234567890", "kind=message", "key=telegram/", "bytes="):
        assert fact in stored_line
    assert "outcome=stored" in stored_line
    assert any("chat_id=99" in line and "outcome=ignored" in line for line in lines)
    assert any("outcome=quarantined" in line for line in lines)
    assert any("outcome=unauthorized" in line for line in lines)
    for secret_thing in (TEXT, FIRST_NAME, "Grupo de teste", SECRET):
        assert secret_thing not in caplog.text


def test_no_answer_ever_carries_a_traceback(client, folder_lake, monkeypatch):
    monkeypatch.setenv("TGLAKE_TIMEZONE", "Not/AZone")

    reply = client.http.post("/webhook", body=update())

    assert reply.status_code == 500
    assert json.loads(reply.body) == {"ok": False, "error": "server misconfigured"}
    assert b"Traceback" not in reply.body
    assert stored(folder_lake) == {}
