"""The pull protocol's answers: ``/info``, ``/export/{gen}`` and ``/sync/{gen}/{start}/{end}``.

Frames come from the live WAL while their generation is live and from its archive once it has
ended (:mod:`.generations`); a replica behind every archive is re-bootstrapped inside the
protocol: it is sent every page of the base snapshot as one transaction, which leaves it exactly
at the start of the oldest archived generation. Framework-free: ``edgestore.web.sync_routes``
maps the errors raised here to the protocol's answers.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import EndOfGeneration, InvalidRequest, NotFoundError, ReplicationError
from .archive import ArchivedGeneration
from .generations import Generations
from .pull import archived_chunks, live_chunks
from .snapshot import FRAME_SIZE, PAGE_SIZE, file_as_frames
from .wal import cut_at_commit

__all__ = ["FrameServer", "Frames"]

log = logging.getLogger("edgestore.replication")


@dataclass(frozen=True, slots=True)
class Frames:
    """A pull answer: an iterator of byte chunks (whole frames) and how many frames."""

    chunks: Iterator[bytes]
    count: int


class FrameServer:
    """Answers replicas from the generations of one database file (any thread)."""

    def __init__(self, generations: Generations) -> None:
        self._gens = generations

    def info(self) -> dict[str, int]:
        """``GET /info``."""
        self._gens.refresh_state()
        return {"current_generation": self._gens.generation}

    def export(self, generation: int) -> Iterator[bytes]:
        """``GET /export/{generation}``: the database file as at the start of the generation.

        Only the current generation is exported (replicas ask for the one ``/info`` named).
        The shared lock is held while the file is read, so no checkpoint tears it.
        """
        gens = self._gens
        gens.refresh_state()
        if generation != gens.generation:
            raise NotFoundError(
                f"generation {generation} cannot be exported; the current generation is "
                f"{gens.generation}"
            )
        return self._export_chunks(generation)

    def _export_chunks(self, generation: int) -> Iterator[bytes]:
        gens = self._gens
        with gens.lock.shared():
            outside = gens.changed_outside()
        if outside:
            gens.adopt_outside_change()
            raise ReplicationError(
                "the database was checkpointed outside edgestore; a new generation began "
                "(retry /info)"
            )
        with gens.lock.shared():
            gens.refresh_state()
            if generation != gens.generation:
                raise NotFoundError(f"generation {generation} ended while it was exported")
            gens.check_db_unchanged()
            with open(gens.db_path, "rb") as fh:
                while piece := fh.read(1 << 20):
                    yield piece

    def frames(self, generation: int, start: int, end: int) -> Frames:
        """``GET /sync/{generation}/{start}/{end}``: frames ``start..end-1``, whole transactions.

        Raises :class:`EndOfGeneration` when there is nothing after ``start - 1``.
        """
        if start < 1 or end <= start:
            raise InvalidRequest(f"invalid frame range {start}..{end} (end is exclusive)")
        gens = self._gens
        with gens.lock.shared():
            gens.refresh_state()
            current = gens.generation
            if generation > current:
                raise NotFoundError(
                    f"generation {generation} does not exist; the current generation is "
                    f"{current} (was this replica made from another primary?)"
                )
            if generation < current:
                archived = gens.archive.get(generation)
                if archived is None:
                    return self._rebootstrap(generation, start)
                return self._archived_frames(archived, current, start, end)
            if not gens.changed_outside():
                return self._live_frames(current, start, end)
        gens.adopt_outside_change()
        raise ReplicationError(
            "the database was checkpointed outside edgestore; a new generation began (retry)"
        )

    def _live_frames(self, current: int, start: int, end: int) -> Frames:
        gens = self._gens
        last, known = gens.cut_live(start, end)
        if last is None:
            if start > known + 1:
                raise ReplicationError(
                    f"the replica is ahead of the primary (asks frame {start}, generation "
                    f"{current} has {known}); delete the replica's files to re-bootstrap it"
                )
            raise EndOfGeneration(current)
        chunks = live_chunks(
            lambda a, b: gens.read_live(current, a, b),
            lambda a, b: self._read_ended(current, a, b),
            start,
            last,
        )
        return Frames(chunks, last - start + 1)

    def _read_ended(self, generation: int, start: int, end: int) -> bytes:
        """Frames of a generation that ended while they were being sent: from its archive."""
        archive = self._gens.archive
        archived = archive.get(generation)
        if archived is None:
            raise ReplicationError(f"generation {generation} ended and is no longer archived")
        return archive.read(archived, start, end, FRAME_SIZE)

    @staticmethod
    def _archived_frames(
        archived: ArchivedGeneration, current: int, start: int, end: int
    ) -> Frames:
        last = cut_at_commit(list(archived.commits), start, end)
        if last is None:
            if start > archived.frames + 1:
                raise ReplicationError(
                    f"the replica is ahead of generation {archived.generation} (asks frame "
                    f"{start} of {archived.frames}); delete its files to re-bootstrap it"
                )
            raise EndOfGeneration(current)
        chunks = archived_chunks(archived.path, start, last, FRAME_SIZE)
        return Frames(chunks, last - start + 1)

    def _rebootstrap(self, generation: int, start: int) -> Frames:
        """A generation no longer archived: send a whole snapshot as one transaction.

        The snapshot is the start of the oldest archived generation (or of the current one
        when nothing is archived). The protocol has no "start over" message and a request
        says only (generation, frame), so the snapshot is padded to end past the frame count
        the dropped generation had: any later request for that generation is then known to
        come after a snapshot (or after all of its frames), and is told the generation ended.
        The replica walks forward; each further dropped generation rebuilds it to the same
        state, and the archived ones apply on top of it.
        """
        gens = self._gens
        known = gens.archive.tombstones().get(generation)
        current = gens.generation
        if known is None or known < 0:
            raise ReplicationError(
                f"generation {generation} is no longer available and its history was lost "
                "(the database was checkpointed outside edgestore); delete the replica's "
                "files (db, -wal, -shm, -info) so that it bootstraps again"
            )
        if start > known:
            raise EndOfGeneration(current)
        base = gens.archive.base()
        path = base[1] if base is not None else gens.db_path
        count = os.stat(path).st_size // PAGE_SIZE
        if count == 0:
            raise EndOfGeneration(current)
        # The snapshot must end at frame >= known so the next request (>= known + 1) is
        # answered "generation ended" above.
        padding = max(0, known - (start + count - 1))
        log.info("replication: re-bootstrapping a replica at %d.%d", generation, start)
        return Frames(self._locked(file_as_frames(path, padding=padding)), count + padding)

    def _locked(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        """``chunks`` read under the shared lock: no generation change drops the base
        snapshot while it is being sent."""
        with self._gens.lock.shared():
            yield from chunks
