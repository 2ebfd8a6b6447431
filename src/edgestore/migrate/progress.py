"""Progress reporting for long migration work, decoupled from any CLI framework.

Three renderings of the same events: a live one-line display on a terminal (rows, rows/s and
ETA for the current table), quiet plain lines otherwise (one per table, plus one every few
seconds for long tables), and JSON events, one object per line, for machines.
"""

from __future__ import annotations

import json
import sys
import time
from typing import IO, Any

__all__ = ["JsonProgress", "LineProgress", "LiveProgress", "Progress", "make_progress"]


class Progress:
    """The interface (and the silent implementation)."""

    def __init__(self) -> None:
        self.step = ""
        self.table = ""
        self.total: int | None = None
        self.rows = 0
        self.started = time.monotonic()

    def phase(self, step: str, detail: str = "") -> None:
        self.step = step

    def start(self, table: str, total: int | None) -> None:
        self.table, self.total, self.rows = table, total, 0
        self.started = time.monotonic()

    def advance(self, rows: int) -> None:
        self.rows += rows

    def done(self) -> None:
        """The current table is finished."""

    def message(self, text: str) -> None:
        """A notable event (a warning, a resumed import)."""

    def close(self) -> None:
        """No more events."""

    # helpers for the renderings
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.rows / elapsed if elapsed > 0 else 0.0

    def eta(self) -> float | None:
        rate = self.rate()
        if self.total is None or rate <= 0 or self.rows > self.total:
            return None
        return (self.total - self.rows) / rate


def _fmt_eta(s: float | None) -> str:
    if s is None:
        return "--:--"
    s = int(s)
    return (
        f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )


class LineProgress(Progress):
    """Plain lines for logs and pipes."""

    def __init__(
        self, stream: IO[str] | None = None, every: float = 10.0, quiet_below: float = 1.0
    ) -> None:
        super().__init__()
        self.stream = stream or sys.stderr
        self.every = every
        self.quiet_below = quiet_below
        self._last = 0.0

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def phase(self, step: str, detail: str = "") -> None:
        super().phase(step)
        self._print(f"{step}{': ' + detail if detail else ''}")

    def start(self, table: str, total: int | None) -> None:
        super().start(table, total)
        self._last = time.monotonic()

    def advance(self, rows: int) -> None:
        super().advance(rows)
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            self._print(
                f"  {self.step} {self.table}: {self.rows:,} rows, {self.rate():,.0f} rows/s, "
                f"ETA {_fmt_eta(self.eta())}"
            )

    def done(self) -> None:
        elapsed = time.monotonic() - self.started
        if elapsed >= self.quiet_below:  # quiet: short tables need no line of their own
            self._print(f"  {self.step} {self.table}: {self.rows:,} rows in {elapsed:.1f}s")

    def message(self, text: str) -> None:
        self._print(text)


class LiveProgress(LineProgress):
    """One line redrawn in place (at most ten times a second) on a terminal."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        super().__init__(stream, every=0.1)
        self._width = 0

    def _draw(self, text: str) -> None:
        pad = max(0, self._width - len(text))
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()
        self._width = len(text)

    def _clear(self) -> None:
        if self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self._width = 0

    def _print(self, text: str) -> None:
        self._clear()
        super()._print(text)

    def advance(self, rows: int) -> None:
        Progress.advance(self, rows)
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            total = f"/{self.total:,}" if self.total else ""
            pct = f" {100 * self.rows / self.total:5.1f}%" if self.total else ""
            self._draw(
                f"  {self.step} {self.table}: {self.rows:,}{total} rows{pct}  "
                f"{self.rate():,.0f} rows/s  ETA {_fmt_eta(self.eta())}"
            )

    def close(self) -> None:
        self._clear()


class JsonProgress(Progress):
    """One JSON object per line: phase, table_start, progress (at most once a second per
    table), table_done, message."""

    def __init__(self, stream: IO[str] | None = None, every: float = 1.0) -> None:
        super().__init__()
        self.stream = stream or sys.stdout
        self.every = every
        self._last = 0.0

    def _emit(self, event: str, **fields: Any) -> None:
        fields = {"event": event, "time": round(time.time(), 3), **fields}
        self.stream.write(json.dumps(fields) + "\n")
        self.stream.flush()

    def phase(self, step: str, detail: str = "") -> None:
        super().phase(step)
        self._emit("phase", step=step, detail=detail)

    def start(self, table: str, total: int | None) -> None:
        super().start(table, total)
        self._last = time.monotonic()
        self._emit("table_start", step=self.step, table=table, total=total)

    def advance(self, rows: int) -> None:
        super().advance(rows)
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            self._emit(
                "progress",
                step=self.step,
                table=self.table,
                rows=self.rows,
                total=self.total,
                rows_per_s=round(self.rate(), 1),
                eta_s=None if self.eta() is None else round(self.eta() or 0.0, 1),
            )

    def done(self) -> None:
        self._emit(
            "table_done",
            step=self.step,
            table=self.table,
            rows=self.rows,
            seconds=round(time.monotonic() - self.started, 3),
        )

    def message(self, text: str) -> None:
        self._emit("message", text=text)


def make_progress(*, json_events: bool, stream: IO[str] | None = None) -> Progress:
    """JSON events when asked; a live display on a terminal; plain lines otherwise."""
    if json_events:
        return JsonProgress(stream or sys.stdout)
    out = stream or sys.stderr
    if out.isatty():
        return LiveProgress(out)
    return LineProgress(out)
