"""Fixtures shared by the test modules: lakes in a folder and in moto S3."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from chalice.test import Client

import app as tglake_app
from chalicelib import runtime
from chalicelib.config import Settings

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT.parent / "shared" / "telegram-samples"
RAW_BUCKET = "tglake-test-raw"
ENRICHED_BUCKET = "tglake-test-enriched"


def sample_files() -> list[Path]:
    """The shared Telegram samples, or an empty list on a clone without them."""
    if not SAMPLES.is_dir():
        return []
    return sorted(SAMPLES.glob("[0-9]*.json"))


@pytest.fixture
def samples() -> list[Path]:
    files = sample_files()
    if not files:
        pytest.skip("../shared/telegram-samples is not present")
    return files


@pytest.fixture(autouse=True)
def _fresh_runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts from an environment of its own and no cached clients."""
    for name in list(os.environ):
        if name.startswith("TGLAKE_") or name == "TELEGRAM_BOT_TOKEN":
            monkeypatch.delenv(name)
    runtime.reset()
    yield
    runtime.reset()


@pytest.fixture
def folder_lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A lake in a temporary folder, configured through the environment."""
    monkeypatch.setenv("TGLAKE_RAW", str(tmp_path / "raw"))
    monkeypatch.setenv("TGLAKE_ENRICHED", str(tmp_path / "enriched"))
    return Settings.from_env()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto's S3 and SSM with fake credentials; nothing leaves the machine."""
    from moto import mock_aws

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield


@pytest.fixture
def s3_lake(aws: None, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A lake in two moto buckets, configured through the environment."""
    import boto3

    s3 = boto3.client("s3")
    for bucket in (RAW_BUCKET, ENRICHED_BUCKET):
        s3.create_bucket(Bucket=bucket)
    monkeypatch.setenv("TGLAKE_RAW", f"s3://{RAW_BUCKET}/lake")
    monkeypatch.setenv("TGLAKE_ENRICHED", f"s3://{ENRICHED_BUCKET}/lake")
    return Settings.from_env()


@pytest.fixture
def client() -> Iterator[Client]:
    """The Chalice test client with the dev stage's environment."""
    with Client(tglake_app.app, stage_name="dev", project_dir=str(ROOT)) as test:
        yield test
