"""The two stores behave alike: a local folder and an S3 prefix (moto)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from chalicelib import storage
from chalicelib.errors import ObjectNotFound, StorageError
from chalicelib.storage import LocalStore, S3Store, open_store
from tests.conftest import RAW_BUCKET

KEYS = [
    "telegram/context_date=2024-03-10/0-1-aa.json",
    "telegram/context_date=2024-03-10/0-2-bb.json",
    "telegram/context_date=2024-03-11/0-3-cc.json",
    "telegram/context_date=2024-03-1x.json",
    "telegram-other/x.json",
    "state/dirty/2024-03-10/day",
]


@pytest.fixture(params=["folder", "s3"])
def store(request, tmp_path):
    if request.param == "folder":
        return open_store(str(tmp_path / "lake"))
    request.getfixturevalue("s3_lake")
    return open_store(f"s3://{RAW_BUCKET}/some/prefix")


def test_open_store_chooses_by_the_form_of_the_location(tmp_path):
    assert isinstance(open_store(str(tmp_path)), LocalStore)
    assert isinstance(open_store("s3://bucket/a/b"), S3Store)
    with pytest.raises(StorageError, match="no bucket"):
        open_store("s3:///prefix")


def test_what_is_put_is_listed_in_key_order_under_its_prefix(store):
    for key in reversed(KEYS):
        store.put(key, key.encode())

    listed = [item.key for item in store.list("telegram/")]
    one_day = [item.key for item in store.list("telegram/context_date=2024-03-10/")]
    partial = [item.key for item in store.list("telegram/context_date=2024-03-1")]

    assert listed == sorted(key for key in KEYS if key.startswith("telegram/"))
    assert one_day == KEYS[:2]
    assert partial == sorted(KEYS[:4])
    assert [item.key for item in store.list("")] == sorted(KEYS)
    assert [item.size for item in store.list("state/")] == [len(KEYS[-1])]
    assert list(store.list("nothing/here/")) == []


@pytest.mark.parametrize(
    "prefix", ["", "telegram/", "telegram/context_date=2024-03-1", "nothing/"]
)
def test_keys_alone_are_the_listing_without_sizes(store, prefix):
    for key in reversed(KEYS):
        store.put(key, key.encode())

    assert list(store.keys(prefix)) == [item.key for item in store.list(prefix)]


def test_get_put_and_delete_round_trip_and_report_missing_keys(store):
    store.put("a/b.json", b"one")
    store.put("a/b.json", b"two")

    assert store.get("a/b.json") == b"two"
    assert store.exists("a/b.json")
    store.delete(["a/b.json", "a/never-was.json"])
    assert not store.exists("a/b.json")
    with pytest.raises(ObjectNotFound):
        store.get("a/b.json")


def test_put_if_absent_creates_once(store):
    first = store.put_if_absent("state/locks/2024-03-10", b"mine")
    second = store.put_if_absent("state/locks/2024-03-10", b"theirs")

    assert (first, second) == (True, False)
    assert store.get("state/locks/2024-03-10") == b"mine"


def test_files_are_uploaded_and_downloaded_whole(store, tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(bytes(range(256)) * 5000)
    target = tmp_path / "target.bin"

    store.upload_file("x/file.parquet", source)
    store.download_file("x/file.parquet", target)

    assert target.read_bytes() == source.read_bytes()
    with pytest.raises(ObjectNotFound):
        store.download_file("x/missing.parquet", target)


def test_keys_deleted_in_several_batches_are_all_gone(store, monkeypatch):
    monkeypatch.setattr(storage, "DELETE_BATCH", 10)
    keys = [f"bulk/{n:05}" for n in range(25)]
    for key in keys:
        store.put(key, b"")

    store.delete(keys)

    assert list(store.list("bulk/")) == []


def test_a_local_key_cannot_leave_its_folder(tmp_path):
    store = LocalStore(tmp_path / "lake")

    for key in ("../outside", "/etc/passwd", "a/../../b", ".."):
        with pytest.raises(StorageError, match="leaves the store"):
            store.put(key, b"")
        with pytest.raises(StorageError, match="leaves the store"):
            store.get(key)
    store.put("a..b/c..d", b"dots inside a name stay")
    assert store.get("a..b/c..d") == b"dots inside a name stay"


def test_a_local_listing_skips_unfinished_temporary_files(tmp_path):
    store = LocalStore(tmp_path)
    store.put("day/a.json", b"1")
    (tmp_path / "day" / ".tmp-abandoned").write_bytes(b"partial")

    assert [item.key for item in store.list("day/")] == ["day/a.json"]


def test_a_local_listing_holds_regular_files_only(tmp_path):
    # A FIFO would block its read forever and /dev/zero never ends; a link to a
    # folder could loop.
    store = LocalStore(tmp_path)
    store.put("day/a.json", b"1")
    folder = tmp_path / "day"
    os.mkfifo(folder / "fifo.json")
    (folder / "zero.json").symlink_to("/dev/zero")
    (folder / "dangling.json").symlink_to(folder / "missing")
    (folder / "loop").symlink_to(folder, target_is_directory=True)
    (tmp_path / "elsewhere.json").write_bytes(b"2")
    (folder / "linked.json").symlink_to(tmp_path / "elsewhere.json")

    assert list(store.keys("")) == ["day/a.json", "day/linked.json", "elsewhere.json"]
    assert store.get("day/linked.json") == b"2"


def test_a_local_listing_of_many_files_is_complete_and_ordered(tmp_path):
    folder = tmp_path / "telegram" / "context_date=2024-03-10"
    folder.mkdir(parents=True)
    names = [f"0-{n}-{n % 7}.json" for n in range(2000)]
    for name in names:
        (folder / name).write_bytes(b"{}")

    listed = [item.key for item in LocalStore(tmp_path).list("telegram/")]

    assert listed == sorted(f"telegram/context_date=2024-03-10/{n}" for n in names)


def test_a_missing_bucket_is_a_storage_error_not_a_missing_key(s3_lake):
    store = open_store("s3://tglake-no-such-bucket/lake")

    with pytest.raises(StorageError) as raised:
        store.get("a.json")

    assert not isinstance(raised.value, ObjectNotFound)
    assert "NoSuchBucket" in str(raised.value)


def test_one_s3_store_serves_many_threads_with_one_client(s3_lake):
    store = open_store(f"s3://{RAW_BUCKET}/threads")
    keys = [f"k/{n}" for n in range(64)]

    def round_trip(key: str) -> bytes:
        store.put(key, key.encode())
        return store.get(key)

    with ThreadPoolExecutor(16) as pool:
        bodies = list(pool.map(round_trip, keys))
    clients = {id(store.client) for _ in range(3)}

    assert bodies == [key.encode() for key in keys]
    assert len(clients) == 1


def test_a_partly_failed_s3_batch_delete_raises_with_the_failed_key(s3_lake):
    import boto3
    from botocore.stub import Stubber

    client = boto3.client("s3")
    store = S3Store(RAW_BUCKET, "lake", client=client)
    with Stubber(client) as stub:
        stub.add_response(
            "delete_objects",
            {"Errors": [{"Key": "lake/b", "Code": "AccessDenied", "Message": "no"}]},
        )
        with pytest.raises(StorageError, match="AccessDenied") as raised:
            store.delete(["a", "b"])

    assert raised.value.key == "b"


def test_s3_keys_live_under_the_configured_prefix(s3_lake):
    import boto3

    open_store(f"s3://{RAW_BUCKET}/deep/prefix/").put("x.json", b"1")

    listed = boto3.client("s3").list_objects_v2(Bucket=RAW_BUCKET)["Contents"]
    assert [item["Key"] for item in listed] == ["deep/prefix/x.json"]


def test_local_writes_leave_no_temporary_files(tmp_path):
    store = LocalStore(tmp_path)
    source = tmp_path / "outside.bin"
    source.write_bytes(b"x")

    store.put("a/1", b"1")
    store.put_if_absent("a/2", b"2")
    store.put_if_absent("a/2", b"3")
    store.upload_file("a/3", source)

    assert sorted(p.name for p in Path(tmp_path, "a").iterdir()) == ["1", "2", "3"]
