"""One run at a time per output: an exclusive ``flock`` on ``<out>.lock`` for the whole run.

Two runs into the same ``--out`` shared its checkpoint: the second resumed the first's parts as its
own (a 20,000-row manifest "scored 39,000 rows", rows of the other manifest under its name) and the
first then failed on files removed under it. The kernel releases a ``flock`` when its holder dies, so
the file left by a killed run never blocks the next one. The lock is taken by the process that runs
the driver (the CLI, ``score_manifest``), never by workers or Spark executors, and its descriptor is
not inherited by them (Python opens files non-inheritable).
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class OutputBusyError(RuntimeError):
    """Another run is writing the same output."""


def lock_path(out: Path) -> Path:
    return out.with_name(out.name + ".lock")


_held = threading.local()  # lock paths this thread holds → depth (the CLI locks, then score_manifest again)


def _held_paths() -> dict[str, int]:
    paths: dict[str, int] | None = getattr(_held, "paths", None)
    if paths is None:
        paths = _held.paths = {}
    return paths


@contextmanager
def output_lock(out: str | Path) -> Iterator[Path]:
    """Hold ``<out>.lock`` exclusively (:class:`OutputBusyError` at once if another process, or another
    thread, holds it); re-entrant within a thread. The file is removed on release, while still locked."""
    path = lock_path(Path(out).absolute())
    held = _held_paths()
    key = str(path)
    if key in held:
        held[key] += 1
        try:
            yield path
        finally:
            held[key] -= 1
        return
    fd = _acquire(path, Path(out))
    held[key] = 1
    try:
        yield path
    finally:
        del held[key]
        try:
            path.unlink(missing_ok=True)  # still locked: a run waiting on this file finds it gone and retries
        except OSError:
            # a folder made read-only under the run: a lock file left blocks nothing, and this error must
            # not replace the run's own outcome (a failed write said with its remedy, or a success)
            pass
        finally:
            os.close(fd)


def _acquire(path: Path, out: Path) -> int:
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _holder(fd)
            os.close(fd)
            raise OutputBusyError(f"another riskprof score{f' (pid {pid})' if pid else ''} is writing {out}: "
                                  "wait for it to finish, or choose another --out") from None
        except BaseException:
            os.close(fd)
            raise
        # the holder may have removed the file between our open and our lock: only the file at the path counts
        try:
            st = os.stat(path)
            same = (st.st_dev, st.st_ino) == (os.fstat(fd).st_dev, os.fstat(fd).st_ino)
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            return fd
        os.close(fd)


def _holder(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
