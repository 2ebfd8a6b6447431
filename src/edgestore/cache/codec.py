"""zstd compression of cached values, with an optional dictionary trained from samples.

Small JSON rows compress poorly alone (the frame has nothing to refer back to); a 16 KiB
dictionary trained from values the cache has actually seen gives the compressor that shared
context. Training starts once enough samples were collected, on a background thread (it takes
tens of milliseconds), and again when the ratio achieved over a window of values falls well
below what the dictionary gave right after training (the data changed shape).

Frames carry their dictionary id, so an entry written with an older dictionary is still
decoded with the right one; the newest ``KEEP_DICTIONARIES`` stay loaded and an entry whose
dictionary was unloaded since is treated as a miss (:class:`UnknownDictionary`).

zstd contexts are not thread-safe, so each thread gets its own (``threading.local``); callers
compress and decompress outside any cache lock.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass

import zstandard

__all__ = ["KEEP_DICTIONARIES", "Codec", "CodecStats", "UnknownDictionary"]

log = logging.getLogger(__name__)

KEEP_DICTIONARIES = 3
# A compressed form must save at least 1/8 of the bytes, otherwise the value is stored raw
# (saves the decompression on every hit for incompressible data such as images).
_MIN_SAVING_NUM, _MIN_SAVING_DEN = 7, 8
_SAMPLE_CUT = 8 * 1024  # zstd models the start of samples; longer ones are cut


class UnknownDictionary(Exception):
    """The frame was compressed with a dictionary that is no longer loaded."""


@dataclass(frozen=True, slots=True)
class CodecStats:
    compressed_values: int
    raw_bytes_in: int
    stored_bytes_out: int
    ratio: float
    dictionary_id: int | None
    dictionary_bytes: int
    dictionaries_loaded: int
    trainings: int
    dictionary_ratio: float | None
    sample_bytes: int


class Codec:
    """Compress/decompress cache values; owns the trained dictionaries."""

    def __init__(
        self,
        *,
        level: int = 1,
        dictionary: bool = True,
        dict_size: int = 16 * 1024,
        sample_budget: int = 1024 * 1024,
        retrain_drop: float = 0.8,
        window: int = 512,
    ) -> None:
        self.level = level
        self.dictionary = dictionary
        self.dict_size = dict_size
        # Samples are copies held outside the cache budget until training, then released.
        self.sample_budget = sample_budget
        self.retrain_drop = retrain_drop
        self.window = window
        self._local = threading.local()
        self._lock = threading.Lock()
        self._dicts: dict[int, zstandard.ZstdCompressionDict] = {}
        self._current = 0  # 0 = no dictionary
        self._generation = 0  # bumps on each install; thread-local contexts follow it
        self._samples: list[bytes] = []
        self._sample_bytes = 0
        self._sample_every = 1
        self._want_samples = dictionary
        self._training = False
        self._trainings = 0
        self._compressed = 0
        self._raw_in = 0
        self._stored_out = 0
        self._win_raw = 0
        self._win_stored = 0
        self._win_n = 0
        self._dict_baseline: float | None = None
        self._dict_last: float | None = None
        self._rng = random.Random(0x5EED)

    # --- hot path ---------------------------------------------------------------------

    def compress(self, value: bytes) -> bytes | None:
        """The zstd frame for ``value``, or None when compression does not pay."""
        if self._want_samples:
            self._maybe_sample(value)
        n = len(value)
        out: bytes = self._contexts()[0].compress(value)
        if len(out) * _MIN_SAVING_DEN > n * _MIN_SAVING_NUM:
            return None
        self._account(n, len(out))
        return out

    def decompress(self, frame: bytes) -> bytes:
        try:
            return self._contexts()[1].decompress(frame)
        except zstandard.ZstdError:
            # Written with another dictionary than the current one (or with none).
            dict_id = zstandard.get_frame_parameters(frame).dict_id
            return self._other_decompressor(dict_id).decompress(frame)

    # --- figures ----------------------------------------------------------------------

    def overhead_bytes(self) -> int:
        """Memory held outside the entries: loaded dictionaries and pending samples."""
        return sum(len(d.as_bytes()) for d in self._dicts.values()) + self._sample_bytes

    def stats(self) -> CodecStats:
        cur = self._dicts.get(self._current)
        return CodecStats(
            compressed_values=self._compressed,
            raw_bytes_in=self._raw_in,
            stored_bytes_out=self._stored_out,
            ratio=round(self._raw_in / self._stored_out, 3) if self._stored_out else 1.0,
            dictionary_id=self._current or None,
            dictionary_bytes=len(cur.as_bytes()) if cur is not None else 0,
            dictionaries_loaded=len(self._dicts),
            trainings=self._trainings,
            dictionary_ratio=round(self._dict_last, 3) if self._dict_last else None,
            sample_bytes=self._sample_bytes,
        )

    def train_now(self) -> bool:
        """Train synchronously from the samples collected so far (tests, warm-up)."""
        with self._lock:
            if self._training or not self._samples:
                return False
            samples = self._samples
            self._samples, self._sample_bytes = [], 0
            self._training = True
        self._train(samples)
        return self._current != 0

    # --- internals --------------------------------------------------------------------

    def _contexts(self) -> tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor]:
        local = self._local
        ctx: tuple[int, zstandard.ZstdCompressor, zstandard.ZstdDecompressor] | None
        ctx = getattr(local, "ctx", None)
        if ctx is None or ctx[0] != self._generation:
            d = self._dicts.get(self._current)
            ctx = (
                self._generation,
                zstandard.ZstdCompressor(
                    level=self.level,
                    dict_data=d,
                    write_checksum=False,
                    write_content_size=True,
                    write_dict_id=True,
                ),
                zstandard.ZstdDecompressor(dict_data=d),
            )
            local.ctx = ctx
        return ctx[1], ctx[2]

    def _other_decompressor(self, dict_id: int) -> zstandard.ZstdDecompressor:
        others: dict[int, zstandard.ZstdDecompressor] | None = getattr(self._local, "others", None)
        if others is None or len(others) > KEEP_DICTIONARIES + 1:
            others = self._local.others = {}
        dec = others.get(dict_id)
        if dec is None:
            d = self._dicts.get(dict_id) if dict_id else None
            if dict_id and d is None:
                raise UnknownDictionary(dict_id)
            dec = others[dict_id] = zstandard.ZstdDecompressor(dict_data=d)
        return dec

    def _account(self, raw: int, stored: int) -> None:
        # Plain int updates; a lost increment under a thread race only blurs a statistic.
        self._compressed += 1
        self._raw_in += raw
        self._stored_out += stored
        if not self.dictionary or not self._current:
            return
        self._win_raw += raw
        self._win_stored += stored
        self._win_n += 1
        if self._win_n >= self.window:
            ratio = self._win_raw / max(1, self._win_stored)
            self._win_raw = self._win_stored = self._win_n = 0
            self._dict_last = ratio
            if self._dict_baseline is None:
                self._dict_baseline = ratio
            elif ratio < self._dict_baseline * self.retrain_drop and not self._want_samples:
                # The data drifted away from what the dictionary was trained on: collect a
                # fresh sample set; training starts when it is full.
                log.info("zstd dictionary ratio fell %.2f -> %.2f", self._dict_baseline, ratio)
                self._sample_every = 1
                self._want_samples = True

    def _maybe_sample(self, value: bytes) -> None:
        if self._training:
            return
        if self._sample_every > 1 and self._rng.randrange(self._sample_every):
            return
        with self._lock:
            if self._training or not self._want_samples:
                return
            sample = value[:_SAMPLE_CUT] if len(value) > _SAMPLE_CUT else value
            self._samples.append(sample)
            self._sample_bytes += len(sample)
            if self._sample_bytes < self.sample_budget and len(self._samples) < 2048:
                return
            samples = self._samples
            self._samples, self._sample_bytes = [], 0
            self._training = True
        threading.Thread(
            target=self._train, args=(samples,), name="edgestore-zstd-train", daemon=True
        ).start()

    def _train(self, samples: list[bytes]) -> None:
        try:
            if len(samples) < 16:
                return
            dict_id = (self._trainings % 0x7FFF_FFF0) + 0x10_0000 + self._rng.randrange(1 << 16)
            buffers: list[bytes | bytearray | memoryview] = list(samples)
            trained = zstandard.train_dictionary(self.dict_size, buffers, dict_id=dict_id)
            trained.precompute_compress(level=self.level)
            with self._lock:
                self._dicts[trained.dict_id()] = trained
                while len(self._dicts) > KEEP_DICTIONARIES:
                    del self._dicts[next(iter(self._dicts))]
                self._current = trained.dict_id()
                self._generation += 1
                self._trainings += 1
                self._dict_baseline = None
                self._want_samples = False
                self._win_raw = self._win_stored = self._win_n = 0
        except zstandard.ZstdError as exc:
            # Too few or too uniform samples: stay as we are and sample more sparsely.
            log.info("zstd dictionary training failed: %s", exc)
            self._sample_every = min(self._sample_every * 2, 64)
        finally:
            self._training = False
