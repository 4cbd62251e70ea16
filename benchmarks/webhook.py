"""Webhook benchmark: time per update, handler overhead and cold start, beside the
original design measured in the same run.

Warm: every generated update goes, in turn, through each case below, in an order that
rotates, so a slow patch of the disk or the machine hits all of them alike
(interleaved, not one case after the other):

- ``Webhook.handle``: tglake's handler, secret checked, allowlist on, one INFO line
  per update (formatted, written to /dev/null);
- ``app.app(event)``: the Lambda entry point, Chalice routing and settings included;
- ``handler, no-op store``: ``Webhook.handle`` with a store that keeps nothing, so
  what remains is the handler's own work;
- ``bare write``: the store's write alone (``LocalStore.put``, fsync included, or one
  ``put_object``), with keys computed beforehand;
- ``original``: parse with ``json.loads``, write a temporary file, copy it into the
  folder or upload it with boto3's ``upload_file``.

"Handler overhead" is the handler's median minus the bare write's median.

Cold: a fresh interpreter times ``import app`` and then ``import app`` plus the first
update through ``app.app(event, None)`` (stored in a folder, or in S3 on a moto server
on 127.0.0.1), and reports which heavy modules it loaded. The original design's cold
start imports its module (boto3 and pyarrow at module level, its client made at
import) and stores one update its way.

    python -m benchmarks.webhook                      # 10,000 updates, 5 cold starts
    python -m benchmarks.webhook --updates 1000 --cold-starts 3
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from benchmarks import common
from benchmarks.common import median, percentile, say
from benchmarks.updates import CHATS, ZONE, day_updates

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-secret_0123456789"
HEAVY = ("boto3", "botocore", "pyarrow", "duckdb", "sqlglot", "matplotlib")
TARGET_OVERHEAD_MS = 1.0
TARGET_IMPORT_MS = 150.0
TARGET_FIRST_MS = 600.0

Case = Callable[[int], object]


def main(argv: list[str] | None = None) -> None:
    """Measure the webhook and print Markdown tables on stdout."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument(
        "--updates", type=int, default=10_000, help="updates per warm case"
    )
    parser.add_argument(
        "--cold-starts", type=int, default=5, help="fresh processes per cold case"
    )
    parser.add_argument("--skip-s3", action="store_true", help="folder cases only")
    args = parser.parse_args(argv)
    common.use_fake_aws()
    _quiet_logging()
    bodies = day_updates(args.updates)
    print(f"# Webhook benchmark, {date.today().isoformat()}\n")
    print(f"Machine: {common.machine()}\n")
    print(f"Load average at start: {common.load()}\n")
    print(
        f"Updates per warm case: {len(bodies):,}; "
        f"cold starts per case: {args.cold_starts} (median shown).\n"
    )
    cold = cold_starts(args.cold_starts, with_s3=not args.skip_s3)
    with tempfile.TemporaryDirectory(prefix="bench-webhook-") as folder:
        warm = {"folder": warm_folder(Path(folder), bodies)}
    if not args.skip_s3:
        warm["moto S3 (in-process mock_aws)"] = warm_s3(bodies)
    for place, timings in warm.items():
        print(f"## Time per update, {place}\n")
        print(warm_table(timings))
        print()
    print(f"Load average at the end: {common.load()}\n")
    print("## Cold start (fresh process)\n")
    print(cold_table(cold))
    print()
    print("## Targets\n")
    print(targets(warm, cold))


def _quiet_logging() -> None:
    """Format tglake's INFO lines as in Lambda, but write them to /dev/null."""
    logger = logging.getLogger("chalicelib")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    logger.addHandler(handler)


def settings_for(raw: str) -> Any:
    from chalicelib.config import Settings

    return Settings(
        raw=raw,
        enriched=raw + "-enriched",
        chat_ids=frozenset(chat.id for chat in CHATS),
        secret_tokens=(SECRET,),
        timezone=ZONE,
    )


def environment_for(raw: str) -> dict[str, str]:
    """The stage environment the Lambda entry point reads on every request."""
    return {
        "TGLAKE_RAW": raw,
        "TGLAKE_ENRICHED": raw + "-enriched",
        "TGLAKE_CHAT_IDS": ",".join(str(chat.id) for chat in CHATS),
        "TGLAKE_SECRET_TOKEN": SECRET,
        "TGLAKE_TIMEZONE": ZONE,
        "TGLAKE_STAGE": "dev",
    }


def headers() -> dict[str, str]:
    # API Gateway hands headers over in lower case.
    return {
        "content-type": "application/json",
        "x-telegram-bot-api-secret-token": SECRET,
    }


def lambda_event(body: bytes) -> dict[str, Any]:
    """The API Gateway proxy event Lambda gives ``app.app`` for one update."""
    return {
        "requestContext": {
            "httpMethod": "POST",
            "resourcePath": "/webhook",
            "path": "/webhook",
            "identity": {"sourceIp": "149.154.167.220"},
        },
        "headers": headers(),
        "pathParameters": None,
        "stageVariables": {},
        "multiValueQueryStringParameters": None,
        "body": body.decode("utf-8"),
        "isBase64Encoded": False,
    }


class _NullStore:
    """Keeps nothing; records the key the handler chose."""

    location = "null"

    def __init__(self) -> None:
        self.last_key = ""

    def put(self, key: str, data: bytes) -> None:
        self.last_key = key

    def get(self, key: str) -> bytes:
        from chalicelib.errors import ObjectNotFound

        raise ObjectNotFound("no such key", location=self.location, key=key)


def make_webhook(settings: Any, store: Any) -> Any:
    from chalicelib.ingest import Ingestor, Webhook
    from chalicelib.secrets import SecretSource

    return Webhook(Ingestor(settings, store), SecretSource(settings))


def keys_of(bodies: list[bytes]) -> list[str]:
    """The key tglake chooses for each update, computed outside any timing."""
    store = _NullStore()
    webhook = make_webhook(settings_for("null"), store)
    keys = []
    for body in bodies:
        webhook.handle(headers(), body)
        keys.append(store.last_key)
    return keys


def interleave(cases: dict[str, Case], count: int) -> dict[str, list[float]]:
    """Run every case on update 0, then every case on update 1, ...; milliseconds.

    The order rotates from one update to the next: a write right after another
    write's fsync waits longer, and no case should always come second.
    """
    timings: dict[str, list[float]] = {name: [] for name in cases}
    names = list(cases)
    clock = time.perf_counter_ns
    for index in range(count):
        turn = index % len(names)
        for name in names[turn:] + names[:turn]:
            case = cases[name]
            started = clock()
            case(index)
            timings[name].append((clock() - started) / 1e6)
        if index and index % 2000 == 0:
            say(f"  {index:,} updates")
    return timings


def checked(reply: Any) -> None:
    """Stop the run unless the update was answered 200 and stored."""
    if isinstance(reply, dict):
        status, stored = reply["statusCode"], '"stored"' in reply["body"]
    else:
        status, stored = reply.status, reply.body.get("outcome") == "stored"
    if status != 200 or not stored:
        raise SystemExit(f"the update was not stored ({status}); benchmark invalid")


def warm_folder(folder: Path, bodies: list[bytes]) -> dict[str, list[float]]:
    """The warm cases on a local folder."""
    from benchmarks import original
    from chalicelib import runtime
    from chalicelib.storage import LocalStore

    say("warm: local folder")
    keys = keys_of(bodies)
    events = [lambda_event(body) for body in bodies]
    handler = make_webhook(
        settings_for(str(folder / "a")), LocalStore(folder / "a")
    ).handle
    null = make_webhook(settings_for("null"), _NullStore()).handle
    bare = LocalStore(folder / "b")
    os.environ.update(environment_for(str(folder / "d")))
    runtime.reset()
    import app

    (folder / "c").mkdir()
    cases: dict[str, Case] = {
        "Webhook.handle": lambda i: checked(handler(headers(), bodies[i])),
        "app.app(event)": lambda i: checked(app.app(events[i], None)),
        "handler, no-op store": lambda i: checked(null(headers(), bodies[i])),
        "bare write (LocalStore.put)": lambda i: bare.put(keys[i], bodies[i]),
        "original (temp file, copy)": lambda i: original.store_update_folder(
            folder / "c", bodies[i]
        ),
    }
    timings = interleave(cases, len(bodies))
    stored = sum(1 for _ in (folder / "a").rglob("*.json"))
    say(f"  stored {stored:,} distinct objects (redeliveries overwrite themselves)")
    return timings


def warm_s3(bodies: list[bytes]) -> dict[str, list[float]]:
    """The warm cases on moto's in-process S3 mock."""
    from moto import mock_aws

    from benchmarks import original
    from chalicelib import runtime
    from chalicelib.storage import S3Store

    say("warm: moto S3 (in-process)")
    keys = keys_of(bodies)
    events = [lambda_event(body) for body in bodies]
    null = make_webhook(settings_for("null"), _NullStore()).handle
    with mock_aws():
        client = common.s3_client()
        client.create_bucket(Bucket=common.BUCKET_RAW)
        bucket = common.BUCKET_RAW
        handler = make_webhook(
            settings_for(f"s3://{bucket}/a"), S3Store(bucket, "a", client=client)
        ).handle
        os.environ.update(environment_for(f"s3://{bucket}/d"))
        runtime.reset()
        import app

        def bare(index: int) -> None:
            client.put_object(Bucket=bucket, Key="b/" + keys[index], Body=bodies[index])

        cases: dict[str, Case] = {
            "Webhook.handle": lambda i: checked(handler(headers(), bodies[i])),
            "app.app(event)": lambda i: checked(app.app(events[i], None)),
            "handler, no-op store": lambda i: checked(null(headers(), bodies[i])),
            "bare write (put_object)": bare,
            "original (temp file, upload_file)": lambda i: original.store_update_s3(
                client, bucket, "c/", bodies[i]
            ),
        }
        timings = interleave(cases, len(bodies))
        listed = client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix="a/"
        )
        stored = sum(page.get("KeyCount", 0) for page in listed)
        say(f"  stored {stored:,} distinct objects")
        runtime.reset()
    return timings


def warm_table(timings: dict[str, list[float]]) -> str:
    """Median and p99 per case, with the ratio to the original design."""
    baseline = next(name for name in timings if name.startswith("original"))
    base = median(timings[baseline])
    rows = []
    for name, values in timings.items():
        mid = median(values)
        rows.append(
            (
                name,
                f"{mid:.3f}",
                f"{percentile(values, 0.99):.3f}",
                f"{mid / base:.2f}",
            )
        )
    table = common.markdown_table(
        ("case", "median ms", "p99 ms", "median / original"), rows
    )
    return table + "\n\n" + overhead_lines(timings)


def overhead_lines(timings: dict[str, list[float]]) -> str:
    bare = next(values for name, values in timings.items() if name.startswith("bare"))
    lines = []
    for name in ("Webhook.handle", "app.app(event)"):
        extra = median(timings[name]) - median(bare)
        lines.append(
            f"- handler overhead, {name}: {extra:.3f} ms (median - bare write)"
        )
    lines.append(
        f"- handler alone (no-op store): "
        f"{median(timings['handler, no-op store']):.3f} ms median"
    )
    return "\n".join(lines)


# The fresh process: read the event, then time the import and the first update.
_COLD_TGLAKE = """
import json, sys, time
event = json.loads(sys.stdin.read())
started = time.perf_counter()
import app
imported = time.perf_counter()
loaded = sorted(name for name in {heavy!r} if name in sys.modules)
reply = app.app(event, None)
stored = time.perf_counter()
print(json.dumps({{
    "import_ms": (imported - started) * 1e3,
    "first_ms": (stored - started) * 1e3,
    "status": reply["statusCode"],
    "body": reply["body"],
    "heavy_after_import": loaded,
    "heavy_after_first": sorted(n for n in {heavy!r} if n in sys.modules),
}}))
"""

_COLD_ORIGINAL = """
import json, sys, time
from pathlib import Path
event = json.loads(sys.stdin.read())
started = time.perf_counter()
import chalice
from benchmarks import original
client = original.connect() if {s3!r} else None
imported = time.perf_counter()
body = event["body"].encode()
if client is None:
    original.store_update_folder(Path({folder!r}), body)
else:
    original.store_update_s3(client, {bucket!r}, "original/", body)
stored = time.perf_counter()
print(json.dumps({{
    "import_ms": (imported - started) * 1e3,
    "first_ms": (stored - started) * 1e3,
    "status": 200,
    "body": "",
    "heavy_after_import": sorted(n for n in {heavy!r} if n in sys.modules),
    "heavy_after_first": sorted(n for n in {heavy!r} if n in sys.modules),
}}))
"""


def cold_starts(count: int, *, with_s3: bool) -> dict[str, list[dict[str, Any]]]:
    """Fresh processes for each cold case; the first run of each is discarded."""
    body = day_updates(1)[0]
    event = json.dumps(lambda_event(body))
    results: dict[str, list[dict[str, Any]]] = {}
    server = None
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as folder:
        cases = {
            "tglake, folder": (_tglake_script(), environment_for(folder + "/t")),
            "original, folder": (
                _original_script(folder=folder + "/o", s3=False),
                {},
            ),
        }
        if with_s3:
            server, endpoint = common.start_moto_server()
            _prepare_server(endpoint)
            bucket = common.BUCKET_RAW
            s3 = {"AWS_ENDPOINT_URL": endpoint}
            ssm = {
                **environment_for(f"s3://{bucket}/s"),
                "TGLAKE_SECRET_TOKEN": "",
                "TGLAKE_SECRET_PARAMETER": "/bench/webhook-secret",
                **s3,
            }
            cases.update(
                {
                    "tglake, S3 (moto server)": (
                        _tglake_script(),
                        {**environment_for(f"s3://{bucket}/t"), **s3},
                    ),
                    "tglake, S3, secret from SSM": (_tglake_script(), ssm),
                    "original, S3 (moto server)": (
                        _original_script(folder="", s3=True),
                        s3,
                    ),
                }
            )
        try:
            for name, (script, env) in cases.items():
                say(f"cold: {name}")
                runs = [_run_fresh(script, env, event) for _ in range(count + 1)]
                results[name] = runs[1:]
        finally:
            if server is not None:
                server.stop()
    return results


def _tglake_script() -> str:
    return _COLD_TGLAKE.format(heavy=HEAVY)


def _original_script(*, folder: str, s3: bool) -> str:
    return _COLD_ORIGINAL.format(
        heavy=HEAVY, s3=s3, folder=folder, bucket=common.BUCKET_RAW
    )


def _prepare_server(endpoint: str) -> None:
    import boto3

    common.s3_client(endpoint).create_bucket(Bucket=common.BUCKET_RAW)
    ssm = boto3.client("ssm", endpoint_url=endpoint, region_name=common.REGION)
    ssm.put_parameter(
        Name="/bench/webhook-secret", Value=SECRET, Type="SecureString", Overwrite=True
    )


def _run_fresh(script: str, env: dict[str, str], event: str) -> dict[str, Any]:
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("TGLAKE_", "AWS_ENDPOINT"))
    }
    environment.update({name: value for name, value in env.items() if value})
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=event,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environment,
        timeout=120,
        check=False,
    )
    wall = (time.perf_counter() - started) * 1e3
    if done.returncode != 0:
        raise SystemExit(f"a cold-start process failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["status"] != 200 or "quarantined" in result["body"]:
        raise SystemExit(f"the first update was not stored: {result}")
    result["process_ms"] = wall
    return result


def cold_table(cold: dict[str, list[dict[str, Any]]]) -> str:
    rows = []
    for name, runs in cold.items():
        rows.append(
            (
                name,
                f"{median([run['import_ms'] for run in runs]):.0f}",
                f"{median([run['first_ms'] for run in runs]):.0f}",
                f"{median([run['process_ms'] for run in runs]):.0f}",
                ", ".join(runs[-1]["heavy_after_import"]) or "none",
                ", ".join(runs[-1]["heavy_after_first"]) or "none",
            )
        )
    return common.markdown_table(
        (
            "case",
            "import ms",
            "import + first update ms",
            "whole process ms",
            "heavy modules after import",
            "after first update",
        ),
        rows,
    )


def targets(
    warm: dict[str, dict[str, list[float]]], cold: dict[str, list[dict[str, Any]]]
) -> str:
    """One line per target: met or not, with the number measured."""
    lines = []
    for place, timings in warm.items():
        bare = next(v for k, v in timings.items() if k.startswith("bare"))
        for name in ("Webhook.handle", "app.app(event)"):
            extra = median(timings[name]) - median(bare)
            lines.append(
                _verdict(
                    f"handler overhead < {TARGET_OVERHEAD_MS:g} ms ({place}, {name})",
                    extra < TARGET_OVERHEAD_MS,
                    f"{extra:.3f} ms",
                )
            )
    for name, runs in cold.items():
        if not name.startswith("tglake"):
            continue
        imported = median([run["import_ms"] for run in runs])
        first = median([run["first_ms"] for run in runs])
        heavy = set(runs[-1]["heavy_after_import"])
        lines.append(
            _verdict(
                f"import app < {TARGET_IMPORT_MS:g} ms ({name})",
                imported < TARGET_IMPORT_MS,
                f"{imported:.0f} ms",
            )
        )
        lines.append(
            _verdict(
                f"first stored update < {TARGET_FIRST_MS:g} ms ({name})",
                first < TARGET_FIRST_MS,
                f"{first:.0f} ms",
            )
        )
        late = set(runs[-1]["heavy_after_first"]) & {"pyarrow", "duckdb"}
        lines.append(
            _verdict(
                f"no pyarrow/duckdb loaded ({name})",
                not late and not heavy & {"pyarrow", "duckdb"},
                ", ".join(sorted(late)) or "none loaded",
            )
        )
    return "\n".join(lines)


def _verdict(target: str, met: bool, measured: str) -> str:
    return f"- {'MET' if met else 'NOT MET'}: {target}: {measured}"


if __name__ == "__main__":
    main()
