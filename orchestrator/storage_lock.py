"""One sweep per storage: an exclusive lock on ``<storage>/.xlt-sweep.lock`` for the sweep's
lifetime.

Two drivers on one ``--storage`` would both run every cell (each has its own Tune state) and
write into each other's checkpoints and stage cache. ``xlt-sweep`` takes the lock before Ray
starts (``--dry-run`` takes none) and holds it until the process ends.

The lock is ``fcntl.flock`` on an open file, so the kernel frees it when its holder dies,
however it dies (``kill -9``, a crashed node): a stale lock file never blocks a new launch.
The holder writes who it is into the file (host, pid, start time, command), which a refused
launch prints.

On NFS: Linux emulates ``flock`` with POSIX byte-range locks on NFS mounts (since kernel
2.6.12), so the lock holds across machines when the server supports locking (NFSv4, or NFSv3
with ``lockd``; not with the ``nolock`` mount option, where each client only sees its own
locks). If the holder's machine dies, an NFSv4 server frees the lock when the client's lease
expires (90 s by default); until then a new launch is refused with the dead holder's name.
Object stores (``s3://``) have no locks: this guards local and NFS storage only.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import re
import socket
import sys
from pathlib import Path

LOCK_NAME = ".xlt-sweep.lock"


class StorageLocked(RuntimeError):
    """Another live ``xlt-sweep`` holds the storage (its message names the holder)."""


class StorageLock:
    """``acquire()`` or raise ``StorageLocked``; released on ``release()`` or process exit."""

    def __init__(self, storage: Path):
        self.path = Path(storage) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> StorageLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise StorageLocked(f"{self.path.parent} is in use by another xlt-sweep: {holder}. One sweep runs "
                                f"per storage; wait for it, stop it (Ctrl-C), or use another --storage") from None
        info = {"host": socket.gethostname(), "pid": os.getpid(),
                "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                "command": " ".join(_redact(a) for a in sys.argv)}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _redact(arg: str) -> str:
    """An argument without the credentials a URI may carry (``scheme://user:secret@host``, a
    query string): the lock file is readable by everyone who can read the storage."""
    arg = re.sub(r"(?<=://)[^/@\s]+@", "***@", arg)
    return re.sub(r"(://[^\s?]*)\?\S*", r"\1?***", arg)


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        info = {}
    if not info:
        return "holder unknown (it has not written its name yet)"
    return f"host {info.get('host')}, pid {info.get('pid')}, started {info.get('started')} ({info.get('command')})"
