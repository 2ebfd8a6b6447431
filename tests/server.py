"""Run ``edgestore serve`` in a subprocess on an ephemeral loopback port (reusable helper).

    from tests.server import EdgestoreServer

    with EdgestoreServer(tmp_path / "app.db") as server:
        httpx.get(server.url + "/health")

The server gets a clean environment (no EDGESTORE_* leaking in from the caller), its own
settings through ``env`` and extra CLI ``args``; ``stop()`` sends SIGTERM and returns the exit
code, so tests can check a graceful shutdown. Output goes to ``server.log_path``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

import httpx

__all__ = ["EdgestoreServer", "free_port"]

REPO = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 60.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EdgestoreServer:
    """``edgestore serve --db <db> --port <free>`` for the duration of a ``with`` block."""

    def __init__(
        self,
        db_path: Path,
        *,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        schemas_dir: Path | None = REPO / "schemas",
        host: str = "127.0.0.1",
        wait_path: str = "/health",
    ) -> None:
        self.db_path = Path(db_path)
        self.host = host
        self.port = free_port()
        self.url = f"http://{host}:{self.port}"
        self.log_path = self.db_path.with_suffix(".server.log")
        self.wait_path = wait_path
        self._args = list(args)
        self._schemas_dir = schemas_dir
        clean = {k: v for k, v in os.environ.items() if not k.startswith("EDGESTORE_")}
        clean["EDGESTORE_ACCESS_LOG"] = "false"
        clean.update(env or {})
        self._env = clean
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        cmd = [
            sys.executable,
            "-c",
            "from edgestore.cli import main; main()",
            "serve",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--db",
            str(self.db_path),
        ]
        if self._schemas_dir is not None:
            cmd += ["--schemas", str(self._schemas_dir)]
        return cmd + self._args

    def start(self) -> EdgestoreServer:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.command(),
            cwd=self.db_path.parent,
            env=self._env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill() reaches granian's workers
        )
        log.close()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"edgestore serve exited early:\n{self.log()}")
            try:
                if httpx.get(self.url + self.wait_path, timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(
            f"edgestore serve did not answer within {STARTUP_TIMEOUT}s:\n{self.log()}"
        )

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0, sig: int = signal.SIGTERM) -> int:
        """Send ``sig`` and wait; returns the exit code (kills after ``timeout``)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise
        self.kill()  # workers a master left behind
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None:
            # granian workers are children of the server process: take its group down.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def __enter__(self) -> EdgestoreServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.stop()
