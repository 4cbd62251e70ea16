"""The original design, rebuilt as the baseline every benchmark measures beside tglake.

Its webhook parsed each body, wrote it to a temporary file under a timestamped name and
uploaded that with boto3's ``upload_file`` (or copied it into a folder). Its daily job
read the day's objects one after the other, built a one-row table per message with
inferred types (``pa.Table.from_pydict`` over one-element lists gathered by walking
the message's keys), concatenated the tables one at a time and wrote the result under
a new timestamped name. Its app module imported boto3 and pyarrow at module level
and made its S3 client there, so this module does the same on purpose: a fresh process
pays for them before its first update, as the original did.

Two changes let it run at all on a realistic day: it reads every object it is given
(the original stopped at the first 1,000), and the concatenation promotes a null
column to a typed one and lines up columns that came in another order (the original
failed the day when text and non-text messages mixed).

The original row had eight columns (the first eight of tglake's schema keep their
names). The same algorithm fed tglake's thirty-column row (``columns=`` a function
such as ``wide_columns`` below) produces what tglake produces, and is much slower: the
cost of each concatenation grows with the columns as well as the rows.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pyarrow as pa
import pyarrow.parquet as pq

Columns = Callable[[dict[str, Any]], "dict[str, list[Any]] | None"]


def connect(**options: Any) -> Any:
    """The S3 client the original app module made at import time."""
    return boto3.client("s3", **options)


def _stamp() -> str:
    now = datetime.now(UTC)
    return f"context_date={now.date().isoformat()}/{now.strftime('%Y%m%d%H%M%S%f')}"


def _write_temporary(body: bytes) -> str:
    update = json.loads(body)
    with tempfile.NamedTemporaryFile(
        "w", suffix=".json", delete=False, encoding="utf-8"
    ) as handle:
        json.dump(update, handle)
    return handle.name


def store_update_s3(client: Any, bucket: str, prefix: str, body: bytes) -> str:
    """The original webhook's write: parse, temporary file, ``upload_file``."""
    temporary = _write_temporary(body)
    key = f"{prefix}telegram/{_stamp()}.json"
    try:
        client.upload_file(temporary, bucket, key)
    finally:
        os.remove(temporary)
    return key


def store_update_folder(folder: Path, body: bytes) -> Path:
    """The same write into a folder: parse, temporary file, copy."""
    temporary = _write_temporary(body)
    target = folder / "telegram" / f"{_stamp()}.json"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(temporary, target)
    finally:
        os.remove(temporary)
    return target


def original_columns(update: dict[str, Any]) -> dict[str, list[Any]] | None:
    """The original design's one-row table, as columns of one value each, or None.

    It walked the message's keys and kept eight fields, named after where they
    came from; a message without text got a ``text`` of ``[None]``.
    """
    message = update.get("message") or update.get("edited_message")
    if not message:
        return None
    columns: dict[str, list[Any]] = {}
    for name, value in message.items():
        if name == "from":
            for field, item in value.items():
                if field in ("id", "is_bot", "first_name"):
                    columns[f"user_{field}"] = [item]
        elif name == "chat":
            for field, item in value.items():
                if field in ("id", "type"):
                    columns[f"chat_{field}"] = [item]
        elif name in ("message_id", "date", "text"):
            columns[name] = [value]
    columns.setdefault("text", [None])
    return columns


def wide_columns(zone: ZoneInfo) -> Columns:
    """The same one-row table with tglake's thirty columns (``message_row``)."""
    from chalicelib.updates import message_row

    def columns(update: dict[str, Any]) -> dict[str, list[Any]] | None:
        row = message_row(update, zone)
        return None if row is None else {name: [value] for name, value in row.items()}

    return columns


def message_table(
    bodies: Iterable[bytes], columns: Columns = original_columns
) -> pa.Table | None:
    """One-row table per message, inferred types, concatenated one at a time."""
    table = None
    for body in bodies:
        values = columns(json.loads(body))
        if values is None:
            continue
        one = pa.Table.from_pydict(values)
        if table is None:
            table = one
        else:
            table = pa.concat_tables([table, one], promote_options="default")
    return table


def compact(
    keys: list[str],
    read: Callable[[str], bytes],
    write: Callable[[Path], None],
    *,
    columns: Columns = original_columns,
) -> int:
    """Read ``keys`` one by one, build the table, write Parquet; returns its rows."""
    table = message_table((read(key) for key in keys), columns)
    if table is None:
        return 0
    with tempfile.TemporaryDirectory(prefix="original-") as folder:
        path = Path(folder) / f"{_stamp().replace('/', '-')}.parquet"
        pq.write_table(table, path)
        write(path)
    return table.num_rows
