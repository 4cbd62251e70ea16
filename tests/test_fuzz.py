"""Property-based fuzzing: odd JSON and bytes never break the parser or the webhook."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib import updates
from chalicelib.config import Settings
from chalicelib.ingest import Ingestor, Webhook
from chalicelib.secrets import SecretSource
from chalicelib.storage import open_store

ZONE = ZoneInfo("America/Sao_Paulo")
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(1 << 70), max_value=1 << 70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
message_keys = st.sampled_from(
    [
        "message_id",
        "date",
        "edit_date",
        "chat",
        "from",
        "text",
        "caption",
        "photo",
        "sticker",
        "new_chat_members",
        "left_chat_member",
        "reply_to_message",
        "forward_origin",
        "sender_chat",
        "message_thread_id",
        "migrate_to_chat_id",
        "migrate_from_chat_id",
        "pinned_message",
    ]
)
# Shaped like updates, so the fuzzing reaches deep into message_row.
ids = st.integers(min_value=-(1 << 64), max_value=1 << 64)
telegram_like = st.builds(
    lambda update_id, kind, payload: {"update_id": update_id, kind: payload},
    ids | json_values,
    st.sampled_from((*updates.MESSAGE_KINDS, "callback_query", "x")),
    st.dictionaries(
        message_keys,
        ids | json_values | st.fixed_dictionaries({"id": ids | json_values}),
        max_size=10,
    ),
)


def to_json_bytes(value: object) -> bytes:
    return json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")


@FUZZ
@given(st.one_of(json_values, telegram_like))
def test_the_parser_never_raises_and_rows_always_fit_the_schema(value):
    import pyarrow as pa

    from chalicelib.schema import SCHEMA, record_batch

    info = updates.inspect(value)
    row = updates.message_row(value, ZONE)

    assert info is None or isinstance(info.kind, str)
    if row is not None:
        batch = pa.RecordBatch.from_pylist([row], schema=SCHEMA)
        assert batch.num_rows == 1
        values = updates.message_values(value, updates.LocalClock(ZONE))
        assert record_batch([values]).equals(batch)
        assert updates.version(values, "key") is not None


@FUZZ
@given(st.binary(max_size=300))
def test_decoding_arbitrary_bytes_never_raises(body):
    value = updates.decode(body)

    assert updates.inspect(value) is None or isinstance(value, dict)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.one_of(
        st.binary(max_size=300),
        json_values.map(to_json_bytes),
        telegram_like.map(to_json_bytes),
    ),
    st.booleans(),
)
def test_the_webhook_answers_every_body_with_200_and_keeps_it(body, allowlist):
    with tempfile.TemporaryDirectory() as folder:
        lake = Settings(
            raw=str(Path(folder) / "raw"),
            chat_ids=frozenset({-100123}) if allowlist else frozenset(),
        )
        store = open_store(lake.raw)
        webhook = Webhook(Ingestor(lake, store), SecretSource(lake))

        reply = webhook.handle({"Content-Type": "text/plain"}, body)

        assert reply.status == 200
        kept = [store.get(item.key) for item in store.list("")]
        assert kept in ([body], []) if allowlist else kept == [body]
        if reply.body["outcome"] != "ignored":
            assert kept == [body]
