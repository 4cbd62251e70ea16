"""Where the layers live: a local folder or an S3 prefix, behind one small interface.

``open_store("s3://bucket/prefix")`` gives an S3 store, any other value a folder. boto3
is imported only when an S3 store makes its first call, so the webhook's cold start
pays for it only when it is really needed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from chalicelib.errors import ObjectNotFound, StorageError

S3_SCHEME = "s3://"
DELETE_BATCH = 1000
TEMP_PREFIX = ".tmp-"
CONDITION_FAILED = ("PreconditionFailed", "412", "ConditionalRequestConflict", "409")
COPY_BUFFER = 1024 * 1024
# Raw updates are a few kilobytes: one read takes the whole file, one more sees its end.
READ_CHUNK = 64 * 1024


@dataclass(frozen=True)
class StoredObject:
    """One listed object."""

    key: str
    size: int
    modified: datetime


class Store(Protocol):
    """What tglake needs of a place to keep objects."""

    location: str
    # Whether reading many objects from several threads at once is faster: true of
    # S3 (each read waits on the network), not of a local disk (Python's lock).
    parallel_reads: bool

    def put(self, key: str, data: bytes) -> None: ...

    def put_if_absent(self, key: str, data: bytes) -> bool: ...

    def get(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def list(self, prefix: str) -> Iterator[StoredObject]: ...

    def keys(self, prefix: str) -> Iterator[str]: ...

    def delete(self, keys: Iterable[str]) -> None: ...

    def upload_file(self, key: str, path: Path) -> None: ...

    def download_file(self, key: str, path: Path) -> None: ...


def open_store(location: str, *, client: Any = None) -> Store:
    """The store for a ``s3://bucket/prefix`` value or a folder path."""
    if location.startswith(S3_SCHEME):
        bucket, _, prefix = location[len(S3_SCHEME) :].partition("/")
        if not bucket:
            raise StorageError("no bucket named", location=location)
        return S3Store(bucket, prefix, client=client)
    return LocalStore(Path(location))


class LocalStore:
    """Objects as files below a folder; writes are atomic and flushed to disk."""

    parallel_reads = False

    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = str(root)

    def _path(self, key: str) -> Path:
        return Path(self._file(key))

    def _file(self, key: str) -> str:
        # A plain string path: compaction reads tens of thousands of small files,
        # and building a Path object for each costs as much as reading it.
        if key.startswith("/") or (".." in key and ".." in key.split("/")):
            raise StorageError("key leaves the store", location=self.location, key=key)
        return os.path.join(self.location, key)

    def put(self, key: str, data: bytes) -> None:
        self._publish(key, data)

    def _publish(self, key: str, data: bytes | Path) -> None:
        """Write a whole file beside the target, then rename it into place."""
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temp = self._write_temp(path.parent, data)
            try:
                os.replace(temp, path)
            except BaseException:
                temp.unlink(missing_ok=True)
                raise
            _fsync_folder(path.parent)
        except OSError as error:
            raise StorageError(
                f"cannot write: {error.strerror}", location=self.location, key=key
            ) from error

    def _write_temp(self, folder: Path, data: bytes | Path) -> Path:
        """A flushed temporary file beside the target, so a rename publishes it."""
        fd, name = tempfile.mkstemp(dir=folder, prefix=TEMP_PREFIX)
        temp = Path(name)
        try:
            with os.fdopen(fd, "wb") as handle:
                if isinstance(data, Path):
                    with data.open("rb") as source:
                        shutil.copyfileobj(source, handle, COPY_BUFFER)
                else:
                    handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return temp

    def put_if_absent(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temp = self._write_temp(path.parent, data)
            try:
                # A hard link is created whole or not at all, and never replaces.
                os.link(temp, path)
            except FileExistsError:
                return False
            finally:
                temp.unlink(missing_ok=True)
            _fsync_folder(path.parent)
        except OSError as error:
            raise StorageError(
                f"cannot write: {error.strerror}", location=self.location, key=key
            ) from error
        return True

    def get(self, key: str) -> bytes:
        try:
            # os.read skips the file object and its fstat: compaction reads tens
            # of thousands of small files, and this is a third faster (measured).
            fd = os.open(self._file(key), os.O_RDONLY)
            try:
                parts = []
                while chunk := os.read(fd, READ_CHUNK):
                    parts.append(chunk)
            finally:
                os.close(fd)
            return parts[0] if len(parts) == 1 else b"".join(parts)
        except FileNotFoundError:
            raise ObjectNotFound(
                "no such key", location=self.location, key=key
            ) from None
        except OSError as error:
            raise StorageError(
                f"cannot read: {error.strerror}", location=self.location, key=key
            ) from error

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str) -> Iterator[StoredObject]:
        """Objects whose key starts with ``prefix``, in S3's (lexicographic) order."""
        for key in self.keys(prefix):
            try:
                stat = os.stat(self._file(key))
            except FileNotFoundError:
                continue  # deleted since the folder was read
            modified = datetime.fromtimestamp(stat.st_mtime, UTC)
            yield StoredObject(key, stat.st_size, modified)

    def keys(self, prefix: str) -> Iterator[str]:
        """The keys alone, in the same order; no ``stat`` per file."""
        folder = prefix.rpartition("/")[0]
        base = self._file(folder) if folder else self.location
        start = f"{folder}/" if folder else ""
        if self.root.exists() and not self.root.is_dir():
            # Listing a file would find nothing, and "empty" is the wrong answer.
            raise StorageError("not a folder", location=self.location)
        try:
            yield from self._walk(base, start, prefix)
        except OSError as error:
            raise StorageError(
                f"cannot list: {error.strerror}", location=self.location, key=prefix
            ) from error

    def _walk(self, folder: str, start: str, prefix: str) -> Iterator[str]:
        # os.scandir reads each folder once; sorting a folder's names with a "/"
        # after sub-folder names yields keys in the same order as whole-key sorting.
        try:
            with os.scandir(folder) as found:
                names = [name for entry in found if (name := _key_part(entry))]
        except (FileNotFoundError, NotADirectoryError):
            return
        names.sort()
        # Below the prefix every key matches: a day's folder skips the checks.
        inside = start.startswith(prefix)
        for name in names:
            key = start + name
            if name.endswith("/"):
                if inside or key.startswith(prefix) or prefix.startswith(key):
                    yield from self._walk(os.path.join(folder, name), key, prefix)
            elif inside or key.startswith(prefix):
                yield key

    def delete(self, keys: Iterable[str]) -> None:
        for key in keys:
            try:
                self._path(key).unlink(missing_ok=True)
            except OSError as error:
                raise StorageError(
                    f"cannot delete: {error.strerror}",
                    location=self.location,
                    key=key,
                ) from error

    def upload_file(self, key: str, path: Path) -> None:
        self._publish(key, path)

    def download_file(self, key: str, path: Path) -> None:
        source = self._path(key)
        if not source.is_file():
            raise ObjectNotFound("no such key", location=self.location, key=key)
        try:
            shutil.copyfile(source, path)
        except FileNotFoundError:
            raise ObjectNotFound(
                "no such key", location=self.location, key=key
            ) from None
        except OSError as error:
            raise StorageError(
                f"cannot read: {error.strerror}", location=self.location, key=key
            ) from error


def _key_part(entry: os.DirEntry[str]) -> str | None:
    """A folder entry's part of a key (a sub-folder's ends with "/"), or None.

    Only regular files are objects: a FIFO would block a read forever and a device
    never ends. A link to a folder is not followed: it could loop, or bring another
    day's objects into this one. Temporary files of unfinished writes are not
    objects yet.
    """
    if entry.name.startswith(TEMP_PREFIX):
        return None
    if entry.is_dir(follow_symlinks=False):
        return entry.name + "/"
    return entry.name if entry.is_file() else None


class S3Store:
    """Objects under a prefix of an S3 bucket."""

    parallel_reads = True

    def __init__(self, bucket: str, prefix: str = "", *, client: Any = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.location = f"{S3_SCHEME}{bucket}/{self.prefix}".rstrip("/")
        self._client = client
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        """One boto3 client, made on first use and shared by threads."""
        if self._client is not None:
            return self._client
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config
                from botocore.exceptions import BotoCoreError

                # Three calls in all, AWS's default: botocore's "max_attempts"
                # counts retries, and 5 meant six calls and up to 31 s of back-off
                # before an unreachable endpoint was reported.
                config = Config(
                    retries={"mode": "standard", "total_max_attempts": 3},
                    max_pool_connections=32,
                    connect_timeout=5,
                    read_timeout=20,
                )
                try:
                    self._client = boto3.client("s3", config=config)
                except (BotoCoreError, ValueError) as error:
                    # A malformed region or endpoint in the environment.
                    raise StorageError(
                        f"cannot use S3: {error}", location=self.location
                    ) from None
            return self._client

    def _error(self, verb: str, key: str | None, error: Exception) -> StorageError:
        code = error_code(error)
        if code in ("NoSuchKey", "404", "NotFound"):
            return ObjectNotFound("no such key", location=self.location, key=key)
        return StorageError(f"cannot {verb}: {code}", location=self.location, key=key)

    def put(self, key: str, data: bytes) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data)
        except (BotoCoreError, ClientError) as error:
            raise self._error("write", key, error) from error

    def put_if_absent(self, key: str, data: bytes) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.put_object(
                Bucket=self.bucket, Key=self.prefix + key, Body=data, IfNoneMatch="*"
            )
        except ClientError as error:
            # 409: another conditional write to the key is in flight, and wins.
            if error_code(error) in CONDITION_FAILED:
                return False
            raise self._error("write", key, error) from error
        except BotoCoreError as error:
            raise self._error("write", key, error) from error
        return True

    def get(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            reply = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)
            return reply["Body"].read()
        except (BotoCoreError, ClientError) as error:
            raise self._error("read", key, error) from error

    def exists(self, key: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self.prefix + key)
        except (BotoCoreError, ClientError) as error:
            translated = self._error("read", key, error)
            if isinstance(translated, ObjectNotFound):
                return False
            raise translated from error
        return True

    def list(self, prefix: str) -> Iterator[StoredObject]:
        from botocore.exceptions import BotoCoreError, ClientError

        paginator = self.client.get_paginator("list_objects_v2")
        try:
            pages = paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix)
            for page in pages:
                for item in page.get("Contents", []):
                    yield StoredObject(
                        item["Key"][len(self.prefix) :],
                        item["Size"],
                        item["LastModified"],
                    )
        except (BotoCoreError, ClientError) as error:
            raise self._error("list", prefix, error) from error

    def keys(self, prefix: str) -> Iterator[str]:
        """The keys alone, in S3's order."""
        for item in self.list(prefix):
            yield item.key

    def delete(self, keys: Iterable[str]) -> None:
        self._delete_objects({"Key": self.prefix + key} for key in keys)

    def delete_versions(self, versions: Iterable[tuple[str, str | None]]) -> int:
        """Remove object versions for good: ``(key, version id)`` pairs, where None
        is the version S3 calls ``null`` (written before versioning was on)."""
        return self._delete_objects(
            {"Key": self.prefix + key, "VersionId": version or "null"}
            for key, version in versions
        )

    def _delete_objects(self, objects: Iterable[dict[str, str]]) -> int:
        """Delete in batches of S3's limit, checking each batch's per-item errors."""
        count = 0
        batch: list[dict[str, str]] = []
        for item in objects:
            batch.append(item)
            if len(batch) == DELETE_BATCH:
                count += self._delete_batch(batch)
                batch = []
        if batch:
            count += self._delete_batch(batch)
        return count

    def _delete_batch(self, objects: list[dict[str, str]]) -> int:
        from botocore.exceptions import BotoCoreError, ClientError

        first_key = objects[0]["Key"][len(self.prefix) :]
        try:
            reply = self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True}
            )
        except (BotoCoreError, ClientError) as error:
            raise self._error("delete", first_key, error) from error
        failed = reply.get("Errors", [])
        if failed:
            first = failed[0]
            raise StorageError(
                f"cannot delete {len(failed)} objects: {first.get('Code')}",
                location=self.location,
                key=first.get("Key", "")[len(self.prefix) :],
            )
        return len(objects)

    def upload_file(self, key: str, path: Path) -> None:
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.upload_file(str(path), self.bucket, self.prefix + key)
        except (BotoCoreError, ClientError, S3UploadFailedError) as error:
            raise self._error("write", key, error) from error

    def download_file(self, key: str, path: Path) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.download_file(self.bucket, self.prefix + key, str(path))
        except (BotoCoreError, ClientError) as error:
            raise self._error("read", key, error) from error


def error_code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    code = response.get("Error", {}).get("Code")
    return str(code) if code else type(error).__name__


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
