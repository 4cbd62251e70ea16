"""The webhook secret: header case, rotation, and SSM Parameter Store with a cache."""

from __future__ import annotations

import json

import pytest

from chalicelib import secrets
from chalicelib.config import Settings
from chalicelib.errors import StorageError
from chalicelib.secrets import SecretSource
from chalicelib.storage import open_store

OLD = "old_secret-1"
NEW = "new_secret-2"
PARAMETER = "/tglake/test/webhook-secret"


def update(update_id: int = 1) -> bytes:
    body = {
        "update_id": update_id,
        "message": {"message_id": update_id, "chat": {"id": 7}, "date": 1710111600},
    }
    return json.dumps(body).encode()


def post(client, secret: str | None, *, name: str = "X-Telegram-Bot-Api-Secret-Token"):
    headers = {} if secret is None else {name: secret}
    return client.http.post("/webhook", headers=headers, body=update())


def stored_count(settings: Settings) -> int:
    return len(list(open_store(settings.raw).list("")))


@pytest.mark.parametrize(
    "name",
    [
        "X-Telegram-Bot-Api-Secret-Token",
        "x-telegram-bot-api-secret-token",
        "X-TELEGRAM-BOT-API-SECRET-TOKEN",
        "x-TeLeGrAm-bOt-ApI-sEcReT-tOkEn",
    ],
)
def test_the_secret_header_is_found_whatever_its_case(
    client, folder_lake, monkeypatch, name
):
    monkeypatch.setenv("TGLAKE_SECRET_TOKEN", OLD)

    reply = post(client, OLD, name=name)

    assert reply.status_code == 200
    assert stored_count(folder_lake) == 1


@pytest.mark.parametrize(
    ("given", "status"),
    [(OLD, 200), (NEW, 200), (None, 401), ("", 401), (OLD + NEW, 401), ("ö", 401)],
)
def test_two_secrets_are_accepted_during_a_rotation(
    client, folder_lake, monkeypatch, given, status
):
    monkeypatch.setenv("TGLAKE_SECRET_TOKEN", f"{OLD},{NEW}")

    reply = post(client, given)

    assert reply.status_code == status
    assert stored_count(folder_lake) == (1 if status == 200 else 0)


@pytest.fixture
def ssm_lake(aws, folder_lake, monkeypatch) -> Settings:
    """A lake whose secret lives in a moto SSM SecureString."""
    import boto3

    boto3.client("ssm").put_parameter(
        Name=PARAMETER, Value=OLD, Type="SecureString", Overwrite=True
    )
    monkeypatch.setenv("TGLAKE_SECRET_PARAMETER", PARAMETER)
    return Settings.from_env()


def rotate(value: str) -> None:
    import boto3

    boto3.client("ssm").put_parameter(
        Name=PARAMETER, Value=value, Type="SecureString", Overwrite=True
    )


def test_the_secret_is_read_from_ssm_and_cached(client, ssm_lake, monkeypatch):
    before = [post(client, OLD).status_code, post(client, NEW).status_code]
    rotate(f"{NEW},{OLD}")
    cached = [post(client, OLD).status_code, post(client, NEW).status_code]
    monkeypatch.setattr(secrets, "CACHE_SECONDS", 0.0)
    fresh = [post(client, OLD).status_code, post(client, NEW).status_code]
    rotate(NEW)
    after = [post(client, OLD).status_code, post(client, NEW).status_code]

    assert before == [200, 401]
    assert cached == [200, 401]
    assert fresh == [200, 200]
    assert after == [401, 200]


def test_a_missing_ssm_parameter_is_a_clear_500_and_stores_nothing(
    client, ssm_lake, caplog
):
    import boto3

    boto3.client("ssm").delete_parameter(Name=PARAMETER)

    reply = post(client, OLD)

    assert reply.status_code == 500
    assert f"SSM parameter {PARAMETER} does not exist" in caplog.text
    assert stored_count(ssm_lake) == 0


class FlakySSM:
    """An SSM client that answers from a list: a value, or an error to raise."""

    def __init__(self, *answers: str | Exception) -> None:
        self.answers = list(answers)

    def get_parameter(self, Name: str, WithDecryption: bool) -> dict:
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return {"Parameter": {"Name": Name, "Value": answer}}


def ssm_error(code: str) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code}}, "GetParameter")


def test_a_warm_lambda_keeps_its_secrets_while_ssm_fails(monkeypatch):
    settings = Settings(secret_parameter=PARAMETER)
    source = SecretSource(settings, ssm_client=FlakySSM(OLD, ssm_error("Throttle")))
    first = source.secrets()
    monkeypatch.setattr(secrets, "CACHE_SECONDS", 0.0)

    during_outage = source.secrets()

    assert first == during_outage == (OLD,)


def test_a_cold_lambda_without_ssm_cannot_check_and_says_so():
    settings = Settings(secret_parameter=PARAMETER)
    source = SecretSource(settings, ssm_client=FlakySSM(ssm_error("InternalError")))

    with pytest.raises(StorageError, match="InternalError"):
        source.secrets()
