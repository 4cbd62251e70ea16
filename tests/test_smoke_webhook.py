"""A first end-to-end check: the shared samples through the webhook into Parquet."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from chalicelib import jobs, layout
from chalicelib.schema import SCHEMA
from chalicelib.updates import MESSAGE_KINDS, inspect, message_row


def test_every_sample_is_stored_once_and_compacted(client, folder_lake, samples):
    raw_root = Path(folder_lake.raw)

    for path in samples:
        for _ in range(2):
            reply = client.http.post("/webhook", body=path.read_bytes())
            assert reply.status_code == 200, path.name

    stored = sorted(raw_root.glob("telegram/*/*.json"))
    assert sorted(p.read_bytes() for p in stored) == sorted(
        p.read_bytes() for p in samples
    )
    days = {layout.day_of_key(p.relative_to(raw_root).as_posix()) for p in stored}
    worker = jobs.compactor(folder_lake)
    results = [worker.compact_day(day) for day in sorted(days)]
    assert sum(r.objects for r in results) == len(samples)
    messages = {
        (row["chat_id"], row["message_id"])
        for row in (
            message_row(json.loads(p.read_bytes()), folder_lake.zone) for p in samples
        )
        if row
    }
    assert sum(r.rows for r in results) == len(messages)
    others = [
        p
        for p in samples
        if inspect(json.loads(p.read_bytes())).kind not in MESSAGE_KINDS
    ]
    assert sum(r.other for r in results) == len(others)
    for result in results:
        if result.key:
            table = pq.read_table(Path(folder_lake.enriched) / result.key)
            assert table.schema.remove_metadata() == SCHEMA
