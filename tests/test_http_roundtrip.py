"""A real HTTP round trip: `chalice local` in a subprocess, posted to with requests."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT

SECRET = "round_trip_secret"
START_SECONDS = 30


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_listening(port: int, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"chalice local exited: {log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"chalice local did not listen on port {port}")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``chalice local`` on a free port with its lake in a temporary folder."""
    chalice = shutil.which("chalice") or str(Path(sys.executable).with_name("chalice"))
    port = free_port()
    env = {
        **os.environ,
        "TGLAKE_RAW": str(tmp_path / "raw"),
        "TGLAKE_ENRICHED": str(tmp_path / "enriched"),
        "TGLAKE_SECRET_TOKEN": SECRET,
    }
    log = tmp_path / "chalice-local.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [chalice, "local", "--port", str(port), "--stage", "dev"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_listening(port, server, log)
        yield f"http://127.0.0.1:{port}/webhook", tmp_path / "raw"
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_an_update_posted_over_http_twice_leaves_one_file(served):
    url, raw = served
    body = json.dumps(
        {
            "update_id": 424242,
            "message": {
                "message_id": 3,
                "chat": {"id": -1005550001111, "type": "supergroup"},
                "date": 1710111600,
                "text": "olá 👋",
            },
        }
    ).encode()
    headers = {
        "content-TYPE": "application/json",
        "x-telegram-BOT-api-SECRET-token": SECRET,
    }

    first = requests.post(url, data=body, headers=headers, timeout=10)
    second = requests.post(url, data=body, headers=headers, timeout=10)
    refused = requests.post(url, data=body, timeout=10)

    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json() == {"ok": True, "outcome": "stored"}
    assert refused.status_code == 401
    files = [path for path in raw.rglob("*") if path.is_file()]
    assert [path.read_bytes() for path in files] == [body]
    assert files[0].parent.name == "context_date=2024-03-10"
