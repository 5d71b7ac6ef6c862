"""The embedded server's life around a foreground command (``hssk demo``).

pgserver stops the embedded PostgreSQL when the last process that attached to it exits
normally (an ``atexit`` hook and a list of attached pids in ``pg/.handle_pids.json``). Two
things defeated that: SIGTERM and a closed terminal (SIGHUP) end the process without ``atexit``,
and the pid of a process that was killed stays in the list forever, so "the last one" never
leaves. ``exit_cleanly_on_signals`` fixes the first, ``release_embedded`` the second.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psutil

from hssk.db.embedded import stop_embedded


def exit_cleanly_on_signals() -> None:
    """Make SIGTERM and SIGHUP (terminal closed) end the process through ``finally`` and
    ``atexit``, as Ctrl-C does. While uvicorn serves it handles SIGTERM itself (graceful
    shutdown), then restores this handler and raises the signal again."""

    def terminate(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, lambda *_: os.kill(os.getpid(), signal.SIGTERM))


def attached_pids(data_dir: Path) -> list[int]:
    """Live processes, other than this one, that hold the embedded server of ``data_dir``."""
    path = data_dir / "pg" / ".handle_pids.json"
    try:
        pids = [int(p) for p in json.loads(path.read_text() or "[]")]
    except (FileNotFoundError, ValueError):
        return []
    me = os.getpid()
    return [p for p in pids if p != me and psutil.pid_exists(p)]


def running(data_dir: Path) -> bool:
    """Whether the embedded server of ``data_dir`` is up (its postmaster still lives)."""
    pidfile = data_dir / "pg" / "postmaster.pid"
    try:
        pid = int(pidfile.read_text().split("\n", 1)[0])
    except (FileNotFoundError, ValueError):
        return False
    return psutil.pid_exists(pid)


@dataclass(frozen=True)
class Release:
    stopped: bool
    others: list[int]

    def message(self) -> str:
        """What happened, in Vietnamese then English."""
        if self.stopped:
            return "PostgreSQL nhúng đã dừng / embedded PostgreSQL stopped."
        if not self.others:
            return (
                "Không dừng được PostgreSQL nhúng; chạy 'hssk db stop' / could not stop the "
                "embedded PostgreSQL; run 'hssk db stop'."
            )
        pids = ", ".join(map(str, self.others))
        return (
            f"PostgreSQL nhúng vẫn chạy vì tiến trình {pids} đang dùng; dừng hẳn bằng "
            f"'hssk db stop' / the embedded PostgreSQL keeps running for process {pids}; "
            "stop it with 'hssk db stop'."
        )


def release_embedded(data_dir: Path) -> Release:
    """Stop the embedded server unless another live process still uses it.

    Dead pids left in pgserver's list (killed processes) do not count as users."""
    others = attached_pids(data_dir)
    if others:
        return Release(False, others)
    if running(data_dir):
        try:
            stop_embedded(data_dir)
        except (subprocess.SubprocessError, OSError):
            return Release(False, [])
    return Release(True, [])
