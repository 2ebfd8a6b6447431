"""The servers and the load generator the HTTP benchmarks share: start a server process on a
free port, wait for it, stop it (and its children); run ``wrk`` and parse its figures; read the
CPU time and RSS of a server's process tree.

Servers: ``edgestore serve`` (granian embedded in its process), edgestore's app under
granian's own processes, and the bare Litestar baseline (bench/http_baseline_app.py) under
granian or uvicorn. Every one runs one worker with access logs off.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import psutil

__all__ = [
    "BENCH",
    "REPO",
    "ServerURL",
    "baseline_cmd",
    "edgestore_cmd",
    "edgestore_env",
    "free_port",
    "granian_processes_cmd",
    "server",
    "tree_cpu",
    "tree_rss",
    "uvicorn_baseline_cmd",
    "wrk",
]

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
BASELINE_APP = "http_baseline_app:create_app"


class ServerURL(str):
    """The base URL of a running server (``url + "/path"`` works); ``pid`` is its process."""

    pid: int

    def __new__(cls, url: str, pid: int) -> ServerURL:
        self = super().__new__(cls, url)
        self.pid = pid
        return self


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(cmd: list[str], env: dict[str, str], cwd: Path, health: str) -> Iterator[ServerURL]:
    """Run ``cmd`` (``{port}`` replaced by a free port) until ``GET health`` answers 200.

    The output goes to ``cwd/server-<port>.log``. On exit: SIGTERM, then SIGKILL to the
    process group if it has not stopped within 20 s.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    full = [c.replace("{port}", str(port)) for c in cmd]
    log = (cwd / f"server-{port}.log").open("wb")
    proc = subprocess.Popen(
        full, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        for _ in range(600):
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}; see {log.name}")
            try:
                if httpx.get(url + health, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        else:
            raise RuntimeError(f"server did not start: {full}; see {log.name}")
        yield ServerURL(url, proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()


def edgestore_env(db: Path, **extra: str) -> dict[str, str]:
    """This environment without any EDGESTORE_ setting, plus the database and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGESTORE_")}
    env.update({"EDGESTORE_ACCESS_LOG": "false", "EDGESTORE_DB_PATH": str(db)})
    env.update(extra)
    return env


def edgestore_cmd(db: Path, *, schemas: bool = True) -> list[str]:
    """``edgestore serve`` on ``db`` (with the repo's schemas/ applied unless told not to)."""
    cmd = [
        sys.executable,
        "-c",
        "from edgestore.cli import main; main()",
        "serve",
        "--port",
        "{port}",
        "--db",
        str(db),
    ]
    return [*cmd, "--schemas", str(REPO / "schemas")] if schemas else cmd


def granian_processes_cmd(*extra: str) -> list[str]:
    """edgestore's app under granian's process model (master + one worker)."""
    return _granian("edgestore.web.app:create_app", *extra)


def baseline_cmd() -> list[str]:
    """The bare Litestar baseline app under granian (master + one worker); needs BENCH_DB."""
    return _granian(BASELINE_APP, "--working-dir", str(BENCH))


def uvicorn_baseline_cmd() -> list[str]:
    """The bare Litestar baseline app under uvicorn; needs BENCH_DB."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--app-dir",
        str(BENCH),
        "--no-access-log",
        "--log-level",
        "warning",
        BASELINE_APP,
    ]


def _granian(app: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "asgi",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        *extra,
        "--no-log",
        app,
    ]


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def wrk(
    url: str,
    *,
    connections: int = 32,
    seconds: int = 3,
    script: Path | None = None,
    threads: int = 1,
) -> dict[str, float]:
    """One ``wrk`` run: rps, p99 (seconds), non2xx, socket_errors, requests."""
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        "10s",
    ]
    if script is not None:
        cmd += ["-s", str(script)]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
    assert p99 is not None, out
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    requests = re.search(r"(\d+) requests in", out)
    return {
        "rps": rps,
        "p99": float(p99.group(1)) * _UNITS[p99.group(2)],
        "non2xx": float(non2xx.group(1)) if non2xx else 0.0,
        "socket_errors": float(sum(int(g) for g in sock.groups())) if sock else 0.0,
        "requests": float(requests.group(1)) if requests else 0.0,
    }


def tree_rss(pid: int) -> int:
    """RSS of the server process and its workers."""
    proc = psutil.Process(pid)
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        with suppress(psutil.NoSuchProcess):
            total += child.memory_info().rss
    return total


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by the server process and its children."""
    proc = psutil.Process(pid)
    total = sum(proc.cpu_times()[:2])
    for child in proc.children(recursive=True):
        with suppress(psutil.NoSuchProcess):
            total += sum(child.cpu_times()[:2])
    return total
