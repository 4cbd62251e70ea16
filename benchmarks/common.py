"""What the benchmarks share: fake AWS credentials, a local moto server, statistics,
tables and a fast folder to load generated updates into.

Nothing here talks to the internet: every AWS client the benchmarks make points at
127.0.0.1 or runs inside moto's in-process mock, and the credentials are fake.
"""

from __future__ import annotations

import os
import platform
import resource
import socket
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BUCKET_RAW = "bench-raw"
BUCKET_ENRICHED = "bench-enriched"
REGION = "us-east-1"


def fake_aws(endpoint: str | None = None) -> dict[str, str]:
    """Environment variables for fake credentials (and a local endpoint)."""
    values = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    if endpoint:
        values["AWS_ENDPOINT_URL"] = endpoint
    return values


def use_fake_aws() -> None:
    """Fake credentials in this process's environment; no profile is read."""
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        os.environ.pop(name, None)
    os.environ.update(fake_aws())


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_moto_server() -> tuple[Any, str]:
    """A moto S3 server on 127.0.0.1 in a thread of this process, and its URL."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server, f"http://127.0.0.1:{port}"


def s3_client(endpoint: str | None = None, *, connections: int = 32) -> Any:
    """A boto3 S3 client, on a local endpoint when one is given."""
    import boto3
    from botocore.config import Config

    config = Config(max_pool_connections=connections, retries={"mode": "standard"})
    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION, config=config)


def percentile(values: Sequence[float], fraction: float) -> float:
    """The value below which ``fraction`` of ``values`` lie (nearest rank)."""
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[rank]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def peak_rss_mb() -> float:
    """This process's peak resident set size (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table, right-aligned except the first column."""
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [
        max(len(headers[column]), *(len(row[column]) for row in cells))
        for column in range(len(headers))
    ]
    lines = [
        "| "
        + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
        + " |",
        "|"
        + "|".join(
            ":" + "-" * (w + 1) if i == 0 else "-" * (w + 1) + ":"
            for i, w in enumerate(widths)
        )
        + "|",
    ]
    for row in cells:
        padded = [
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("| " + " | ".join(padded) + " |")
    return "\n".join(lines)


def machine() -> str:
    """One line naming the machine and the versions measured."""
    import boto3
    import moto
    import pyarrow

    return (
        f"{platform.machine()} {platform.system()} {platform.release()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, "
        f"pyarrow {pyarrow.__version__}, boto3 {boto3.__version__}, "
        f"moto {moto.__version__}"
    )


def load() -> str:
    """The 1, 5 and 15 minute load averages (other work skews the timings)."""
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def say(message: str) -> None:
    """Progress for the person running the benchmark (stderr)."""
    print(message, file=sys.stderr, flush=True)


class PlainFolder:
    """A folder store without fsync, to load generated updates quickly.

    Only ``put`` and ``get`` are provided: what ``Ingestor.ingest`` needs, so the keys
    are exactly those the webhook would choose.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = str(root)

    def put(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def get(self, key: str) -> bytes:
        from chalicelib.errors import ObjectNotFound

        path = self.root / key
        if not path.is_file():
            raise ObjectNotFound("no such key", location=self.location, key=key)
        return path.read_bytes()
