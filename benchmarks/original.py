"""The original design, rebuilt as the baseline every benchmark measures beside tglake.

Its webhook parsed each body, wrote it to a temporary file under a timestamped name and
uploaded that with boto3's ``upload_file`` (or copied it into a folder). Its daily job
read the day's objects one after the other, built a one-row table per message with
inferred types, concatenated the tables one at a time and wrote the result under a new
timestamped name. Its app module imported boto3 and pyarrow at module level and made
its S3 client there, so this module does the same on purpose: a fresh process pays for
them before its first update, as the original did.

Two changes let it run at all on a realistic day, and both only make it faster: it
reads every object it is given (the original stopped at the first 1,000), and the
concatenation promotes a null column to a typed one (the original failed the day when
text and non-text messages mixed).

The original row had eight columns (the first eight of tglake's schema keep their
names). The same algorithm fed tglake's thirty-column row (``row=`` a function such
as ``chalicelib.updates.message_row``) produces what tglake produces, and is much
slower: the cost of each concatenation grows with the columns as well as the rows.
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

import boto3
import pyarrow as pa
import pyarrow.parquet as pq

Row = Callable[[dict[str, Any]], "dict[str, Any] | None"]


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


def original_row(update: dict[str, Any]) -> dict[str, Any] | None:
    """The original design's row: a message's eight columns, or None."""
    message = update.get("message") or update.get("edited_message")
    if not message:
        return None
    sender = message.get("from", {})
    chat = message.get("chat", {})
    return {
        "message_id": message.get("message_id"),
        "user_id": sender.get("id"),
        "user_is_bot": sender.get("is_bot"),
        "user_first_name": sender.get("first_name"),
        "chat_id": chat.get("id"),
        "chat_type": chat.get("type"),
        "text": message.get("text"),
        "date": message.get("date"),
    }


def message_table(bodies: Iterable[bytes], row: Row = original_row) -> pa.Table | None:
    """One-row table per message, inferred types, concatenated one at a time."""
    table = None
    for body in bodies:
        values = row(json.loads(body))
        if values is None:
            continue
        one = pa.Table.from_pylist([values])
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
    row: Row = original_row,
) -> int:
    """Read ``keys`` one by one, build the table, write Parquet; returns its rows."""
    table = message_table((read(key) for key in keys), row)
    if table is None:
        return 0
    with tempfile.TemporaryDirectory(prefix="original-") as folder:
        path = Path(folder) / f"{_stamp().replace('/', '-')}.parquet"
        pq.write_table(table, path)
        write(path)
    return table.num_rows
