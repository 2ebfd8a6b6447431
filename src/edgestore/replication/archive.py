"""On-disk replication state next to the database: the generation id and archived generations.

Layout, in the directory ``<db>-replication/``::

    state.json          {"generation": N, "salts": [s1, s2] | null, "db_stat": [size, mtime_ns],
                         "started_at": unix seconds, "pending_checkpoint": bool}
    gen-N.frames        every frame of generation N up to its last commit frame, validated
    gen-N.json          {"generation": N, "frames": n, "commits": [...], "ended_at": t,
                         "complete": bool}
    base-R.db           the database as at the start of R, the oldest archived generation:
                        what a replica older than every archive is re-bootstrapped to

Every file is written to a temporary name, fsynced and renamed, so a crash leaves either the old
or the new version. ``complete`` is false when frames of that generation were lost (the WAL was
reset by another program); a replica asking past them is re-bootstrapped instead of being told
the generation ended.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .snapshot import apply_frames

__all__ = ["Archive", "ArchivedGeneration", "GenerationState"]


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(slots=True)
class GenerationState:
    """The live generation, as persisted in ``state.json``."""

    generation: int = 1
    salts: tuple[int, int] | None = None
    db_stat: tuple[int, int] | None = None
    started_at: float = field(default_factory=time.time)
    pending_checkpoint: bool = False

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "generation": self.generation,
                "salts": list(self.salts) if self.salts else None,
                "db_stat": list(self.db_stat) if self.db_stat else None,
                "started_at": self.started_at,
                "pending_checkpoint": self.pending_checkpoint,
            }
        ).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> GenerationState:
        data: dict[str, Any] = json.loads(raw)
        salts = data.get("salts")
        stat = data.get("db_stat")
        return cls(
            generation=int(data["generation"]),
            salts=(int(salts[0]), int(salts[1])) if salts else None,
            db_stat=(int(stat[0]), int(stat[1])) if stat else None,
            started_at=float(data.get("started_at", time.time())),
            pending_checkpoint=bool(data.get("pending_checkpoint", False)),
        )


@dataclass(frozen=True, slots=True)
class ArchivedGeneration:
    """An ended generation whose frames are kept for replicas that are behind."""

    generation: int
    frames: int
    commits: tuple[int, ...]
    ended_at: float
    complete: bool
    path: Path  # the .frames file
    size: int


class Archive:
    """The replication directory of one database."""

    def __init__(self, db_path: Path) -> None:
        self.dir = db_path.with_name(db_path.name + "-replication")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state_path = self.dir / "state.json"
        self._applying_marker = self.dir / "base.applying"
        # Archives never change once written: their metadata (commit lists) is kept here.
        self._cache: dict[int, ArchivedGeneration] = {}

    # --- live generation ---------------------------------------------------------------
    def load_state(self) -> GenerationState | None:
        try:
            return GenerationState.from_json(self.state_path.read_bytes())
        except FileNotFoundError:
            return None

    def save_state(self, state: GenerationState) -> None:
        _atomic_write(self.state_path, state.to_json())

    # --- ended generations -------------------------------------------------------------
    def _frames_path(self, generation: int) -> Path:
        return self.dir / f"gen-{generation}.frames"

    def _meta_path(self, generation: int) -> Path:
        return self.dir / f"gen-{generation}.json"

    def store(
        self,
        generation: int,
        source_fd: int,
        offset: int,
        length: int,
        commits: list[int],
        *,
        complete: bool,
    ) -> None:
        """Archive ``length`` bytes of frames read from ``source_fd`` at ``offset``.

        Copied in slices so that archiving a large WAL does not hold it in memory; data first,
        then its metadata (the metadata is what makes the generation "retained").
        """
        path = self._frames_path(generation)
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "wb") as fh:
            done = 0
            while done < length:
                piece = os.pread(source_fd, min(1 << 20, length - done), offset + done)
                if not piece:
                    break
                fh.write(piece)
                done += len(piece)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        meta = {
            "generation": generation,
            "frames": commits[-1] if commits else 0,
            "commits": commits,
            "ended_at": time.time(),
            "complete": complete,
        }
        _atomic_write(self._meta_path(generation), json.dumps(meta).encode())

    # --- the snapshot at the start of the oldest archived generation ----------------------
    def base_path(self, generation: int) -> Path:
        return self.dir / f"base-{generation}.db"

    def base(self) -> tuple[int, Path] | None:
        """``(R, path)``: the database as at the start of R, the oldest archived generation."""
        gens = self.generations()
        if not gens:
            return None
        path = self.base_path(gens[0])
        return (gens[0], path) if path.exists() else None

    def save_base(self, generation: int, db_path: Path) -> None:
        """Copy the database file (the start of ``generation``) as the base snapshot."""
        target = self.base_path(generation)
        tmp = target.with_name(f".{target.name}.tmp")
        shutil.copyfile(db_path, tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        _fsync_dir(self.dir)

    def get(self, generation: int) -> ArchivedGeneration | None:
        """The archived generation, or None when it was never archived or was pruned."""
        cached = self._cache.get(generation)
        if cached is not None:
            if cached.path.exists():  # another process may have pruned it
                return cached
            self._cache.pop(generation, None)
            return None
        try:
            meta = json.loads(self._meta_path(generation).read_bytes())
            size = self._frames_path(generation).stat().st_size
        except (FileNotFoundError, ValueError):
            return None
        archived = ArchivedGeneration(
            generation=generation,
            frames=int(meta["frames"]),
            commits=tuple(int(c) for c in meta["commits"]),
            ended_at=float(meta["ended_at"]),
            complete=bool(meta["complete"]),
            path=self._frames_path(generation),
            size=size,
        )
        if len(self._cache) >= 64:
            self._cache.clear()
        self._cache[generation] = archived
        return archived

    def generations(self) -> list[int]:
        """Archived generation ids, oldest first."""
        out = []
        for p in self.dir.glob("gen-*.json"):
            try:
                out.append(int(p.stem.split("-", 1)[1]))
            except ValueError:
                continue
        return sorted(out)

    def read(self, archived: ArchivedGeneration, start: int, end: int, frame_size: int) -> bytes:
        """Frames ``start..end`` inclusive of an archived generation."""
        with open(archived.path, "rb") as fh:
            fh.seek((start - 1) * frame_size)
            return fh.read((end - start + 1) * frame_size)

    def prune(
        self, *, max_age: float, max_bytes: int, page_size: int, now: float | None = None
    ) -> list[int]:
        """Drop the oldest archives past the retention time or size; return the ids dropped.

        The base snapshot moves forward over the dropped generations (their frames applied to
        it), so it always is the start of the oldest generation still archived; when nothing
        is archived any more there is no base (the live database file is the start).
        """
        now = time.time() if now is None else now
        items = [a for g in self.generations() if (a := self.get(g)) is not None]
        base = self.base()
        total = sum(a.size for a in items) + (base[1].stat().st_size if base else 0)
        drop: list[ArchivedGeneration] = []
        for a in items:  # oldest first
            if now - a.ended_at <= max_age and total <= max_bytes:
                break
            drop.append(a)
            total -= a.size
        if not drop:
            return []
        keep = items[len(drop) :]
        if keep and base is not None:
            # In place, under a marker: a crash midway leaves a base that check() discards.
            _atomic_write(self._applying_marker, b"")
            for a in drop:
                apply_frames(base[1], a.path, upto=a.frames, page_size=page_size)
            os.replace(base[1], self.base_path(keep[0].generation))
            _fsync_dir(self.dir)
            self._applying_marker.unlink()
        self._add_tombstones({a.generation: a.frames for a in drop})
        # Metadata first: a generation without metadata is "not retained" even if a crash
        # leaves its frames file behind.
        for a in drop:
            self._meta_path(a.generation).unlink(missing_ok=True)
            a.path.unlink(missing_ok=True)
        for a in drop:
            self._cache.pop(a.generation, None)
        if not keep:
            for p in self.dir.glob("base-*.db"):
                p.unlink(missing_ok=True)
        return [a.generation for a in drop]

    def check(self) -> None:
        """After a crash: archives without an intact base snapshot cannot be served; drop them
        (as dropped by retention: replicas behind them are re-bootstrapped)."""
        gens = self.generations()
        if self._applying_marker.exists() or (gens and not self.base_path(gens[0]).exists()):
            tomb = {g: a.frames for g in gens if (a := self.get(g)) is not None}
            self._add_tombstones(tomb)
            self._applying_marker.unlink(missing_ok=True)
            for g in gens:
                self._meta_path(g).unlink(missing_ok=True)
                self._frames_path(g).unlink(missing_ok=True)
            gens = []
        for p in self.dir.glob("base-*.db"):
            if not gens or p != self.base_path(gens[0]):
                p.unlink(missing_ok=True)

    def clear(self, *, lost_generation: int) -> None:
        """Drop every archive: ``lost_generation`` lost frames, so history before it is void."""
        tomb = dict.fromkeys(self.generations(), -1)
        tomb[lost_generation] = -1
        self._add_tombstones(tomb)
        for g in self.generations():
            self._meta_path(g).unlink(missing_ok=True)
            self._frames_path(g).unlink(missing_ok=True)
        for p in self.dir.glob("base-*.db"):
            p.unlink(missing_ok=True)
        self._cache.clear()

    # --- generations no longer archived ---------------------------------------------------
    def _tombstone_path(self) -> Path:
        return self.dir / "pruned.json"

    def tombstones(self) -> dict[int, int]:
        """Dropped generation -> its frame count (-1: unknown, frames were lost)."""
        try:
            raw: dict[str, int] = json.loads(self._tombstone_path().read_bytes())
        except (FileNotFoundError, ValueError):
            return {}
        return {int(k): int(v) for k, v in raw.items()}

    def _add_tombstones(self, items: dict[int, int]) -> None:
        tomb = self.tombstones()
        tomb.update(items)
        _atomic_write(
            self._tombstone_path(), json.dumps({str(k): v for k, v in tomb.items()}).encode()
        )
