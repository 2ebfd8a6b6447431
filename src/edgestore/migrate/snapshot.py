"""The snapshot format: a directory with ``manifest.json`` and zstd-compressed chunks.

A chunk file holds a zstd frame whose content is a sequence of batches, each a 4-byte
little-endian length followed by a MessagePack array of rows (a row is an array of nil, int,
float, str or bin). Values are already in their SQLite form (see typemap). The manifest lists
each chunk with its row count, size and SHA-256 of the compressed file; the manifest is written
last (atomically), so a directory without one is an unfinished export. The JSON Schema is
``schemas/snapshot-manifest.schema.json``.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, cast

import msgspec
import zstandard

from ..errors import SnapshotError
from .plan import Plan

__all__ = [
    "FORMAT_VERSION",
    "ChunkInfo",
    "ChunkWriter",
    "Manifest",
    "TableData",
    "iter_chunk_batches",
    "read_manifest",
    "write_manifest",
]

FORMAT = "edgestore-snapshot"
# 2: the plan carries views, triggers, trigger-numbered sequences and partitions; an older
# edgestore would import such a snapshot without them, so it must refuse it instead
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
_LEN = struct.Struct("<I")


class ChunkInfo(msgspec.Struct):
    file: str  # relative to the snapshot directory
    rows: int
    bytes: int
    sha256: str


class TableData(msgspec.Struct):
    name: str
    row_count: int
    chunks: list[ChunkInfo]


class Manifest(msgspec.Struct):
    format: str
    format_version: int
    edgestore_version: str
    created_at: str
    plan: Plan
    data: list[TableData]

    def table_data(self, name: str) -> TableData:
        for d in self.data:
            if d.name == name:
                return d
        raise SnapshotError(f"table {name!r} has no data in the snapshot manifest")


def write_manifest(directory: Path, manifest: Manifest) -> None:
    """Write the manifest atomically (temp file, fsync, rename)."""
    tmp = directory / (MANIFEST + ".tmp")
    data = msgspec.json.format(msgspec.json.encode(manifest), indent=2)
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, directory / MANIFEST)


def read_manifest(directory: Path) -> Manifest:
    """Read and check a manifest; refuse unfinished, foreign or newer-format snapshots."""
    path = directory / MANIFEST
    if not directory.is_dir():
        raise SnapshotError(f"snapshot directory {directory} does not exist")
    if not path.exists():
        raise SnapshotError(
            f"{directory} has no {MANIFEST}: not a snapshot, or an export that did not finish"
        )
    raw = path.read_bytes()
    try:
        head: dict[str, Any] = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise SnapshotError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        raise SnapshotError(f"{path} is not an edgestore snapshot manifest")
    version = head.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise SnapshotError(
            f"{path} has snapshot format version {version}; this edgestore reads versions up "
            f"to {FORMAT_VERSION}: upgrade edgestore to import it"
        )
    try:
        return msgspec.json.decode(raw, type=Manifest)
    except msgspec.ValidationError as exc:
        raise SnapshotError(f"{path} is malformed: {exc}") from exc


class ChunkWriter:
    """Streams batches into one compressed chunk file, hashing what it writes."""

    def __init__(self, path: Path, level: int = 3) -> None:
        self.path = path
        self._file = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._hash = hashlib.sha256()
        # one zstd worker thread compresses while Python encodes the next batch (it releases
        # the GIL); 1 MiB jobs bound its buffers (the default, 4x the window, cost ~30 MiB)
        params = zstandard.ZstdCompressionParameters.from_level(level, threads=1, job_size=1 << 20)
        self._cctx = zstandard.ZstdCompressor(compression_params=params)
        self._stream = self._cctx.stream_writer(
            cast("IO[bytes]", _HashingWriter(self._file, self._hash))
        )
        self.rows = 0
        self.raw_bytes = 0

    def write_batch(self, encoded: bytes, rows: int) -> None:
        self._stream.write(_LEN.pack(len(encoded)))
        self._stream.write(encoded)
        self.rows += rows
        self.raw_bytes += len(encoded) + 4

    def close(self) -> ChunkInfo:
        self._stream.flush(zstandard.FLUSH_FRAME)
        self._file.flush()
        os.fsync(self._file.fileno())
        size = self._file.tell()
        self._file.close()
        return ChunkInfo(self.path.name, self.rows, size, self._hash.hexdigest())


class _HashingWriter(io.RawIOBase):
    def __init__(self, f: io.BufferedWriter, h: Any) -> None:
        self._f = f
        self._h = h

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self._h.update(b)
        return self._f.write(b)


class _HashingReader:
    """A file wrapper that hashes and counts every byte read through it."""

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f
        self.hash = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self._f.read(size)
        self.hash.update(data)
        self.size += len(data)
        return data


MAX_BATCH_BYTES = 256 * 1024 * 1024  # a larger length prefix can only be corruption


def iter_chunk_batches(directory: Path, chunk: ChunkInfo) -> Iterator[list[list[Any]]]:
    """Yield a chunk's batches of rows, streaming (memory does not grow with chunk size).

    The SHA-256 of the file is checked when its end is reached, so a consumer must treat the
    rows as unconfirmed until the iteration completes: the import loads a chunk in one
    transaction and rolls it back when this raises, so nothing from a corrupt chunk is kept.
    """
    path = directory / chunk.file
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError as exc:
        raise SnapshotError(f"chunk file {path} is missing") from exc
    src = _HashingReader(f)
    decoder = msgspec.msgpack.Decoder()
    seen = 0
    try:
        reader = zstandard.ZstdDecompressor().stream_reader(cast("IO[bytes]", src), closefd=False)
        while True:
            head = reader.read(4)
            if not head:
                break
            (n,) = _LEN.unpack(head)
            if n > MAX_BATCH_BYTES:
                raise SnapshotError(f"chunk file {path} is corrupt (batch length {n})")
            payload = reader.read(n)
            while len(payload) < n:
                more = reader.read(n - len(payload))
                if not more:
                    raise SnapshotError(f"chunk file {path} is corrupt (truncated)")
                payload += more
            rows: list[list[Any]] = decoder.decode(payload)
            seen += len(rows)
            yield rows
        while src.read(1 << 16):  # hash whatever the decompressor did not need
            pass
    except (zstandard.ZstdError, msgspec.DecodeError, struct.error, ValueError) as exc:
        raise SnapshotError(f"chunk file {path} is corrupt (cannot be decoded: {exc})") from exc
    finally:
        f.close()
    digest = src.hash.hexdigest()
    if src.size != chunk.bytes or digest != chunk.sha256:
        raise SnapshotError(
            f"chunk file {path} is corrupt: its SHA-256 is {digest[:16]}..., the manifest "
            f"says {chunk.sha256[:16]}... (re-export, or copy the file again)"
        )
    if seen != chunk.rows:
        raise SnapshotError(f"chunk file {path} holds {seen} rows, the manifest says {chunk.rows}")
