"""The enriched table's one explicit Arrow schema (imports pyarrow: compaction only)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

# The first eight columns keep the original design's names and types.
SCHEMA = pa.schema(
    [
        ("message_id", pa.int64()),
        ("user_id", pa.int64()),
        ("user_is_bot", pa.bool_()),
        ("user_first_name", pa.string()),
        ("chat_id", pa.int64()),
        ("chat_type", pa.string()),
        ("text", pa.string()),
        ("date", pa.int64()),
        ("update_id", pa.int64()),
        ("update_kind", pa.string()),
        ("sent_at", pa.timestamp("ms", tz="UTC")),
        ("edit_date", pa.int64()),
        ("content_type", pa.string()),
        ("service_type", pa.string()),
        ("caption", pa.string()),
        ("user_last_name", pa.string()),
        ("user_username", pa.string()),
        ("chat_title", pa.string()),
        ("sender_chat_id", pa.int64()),
        ("message_thread_id", pa.int64()),
        ("reply_to_message_id", pa.int64()),
        ("reply_to_user_id", pa.int64()),
        ("is_forwarded", pa.bool_()),
        ("new_member_count", pa.int32()),
        ("left_member_id", pa.int64()),
        ("migrate_to_chat_id", pa.int64()),
        ("migrate_from_chat_id", pa.int64()),
        ("local_date", pa.date32()),
        ("local_hour", pa.int32()),
        ("local_weekday", pa.int32()),
    ]
)


def record_batch(rows: Sequence[tuple[Any, ...]]) -> pa.RecordBatch:
    """A batch of rows as ``updates.message_values`` gives them, built column by
    column (a third of the time of building it from dicts, measured)."""
    columns = zip(*rows, strict=True) if rows else ([] for _ in SCHEMA)
    arrays = [
        pa.array(column, type=field.type)
        for column, field in zip(columns, SCHEMA, strict=True)
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=SCHEMA)


# Athena's names for the Arrow types above, used to check the DDL against SCHEMA.
ATHENA_TYPES = {
    pa.int64(): "bigint",
    pa.int32(): "int",
    pa.bool_(): "boolean",
    pa.string(): "string",
    pa.timestamp("ms", tz="UTC"): "timestamp",
    pa.date32(): "date",
}
