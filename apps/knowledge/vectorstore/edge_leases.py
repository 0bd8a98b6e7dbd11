"""Leases on Qdrant Edge shards (see edge.py for the process model).

A shard directory can be open in one ``EdgeShard`` at a time, so each collection is guarded by
an exclusive ``flock`` lease, shared by every store object of the process. The holder keeps the
shard open while it is used and for ``linger_s`` afterwards, and a reaper thread gives it up as
soon as another process touches the ``.want`` file. A forked child forgets its parent's leases.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import threading
import time
from pathlib import Path

import qdrant_edge as qe

from apps.knowledge.vectorstore.base import CollectionNotFoundError, VectorStoreError

logger = logging.getLogger(__name__)

_REAPER_INTERVAL_S = 0.05
_WANT_REFRESH_S = 0.05


class VectorStoreBusyError(VectorStoreError):
    """Another process held the collection longer than ``lock_timeout_s``."""


class ShardLease:
    """Exclusive, cross-process right to have one shard directory open."""

    def __init__(self, *, shard_dir: Path, lock_path: Path, want_path: Path) -> None:
        self.shard_dir = shard_dir
        self.lock_path = lock_path
        self.want_path = want_path
        self.mutex = threading.RLock()
        self.shard: qe.EdgeShard | None = None
        self._fd: int | None = None
        self._acquired_ns = 0
        self.last_used = 0.0
        self.linger_s = 1.0
        self.dirty = False

    def open(self, *, timeout_s: float, create: qe.EdgeConfig | None = None) -> qe.EdgeShard:
        """Return the open shard, taking the lock and loading it if needed (mutex held)."""
        if self.shard is not None:
            return self.shard
        self._lock(timeout_s)
        try:
            if create is not None and not (self.shard_dir / "edge_config.json").exists():
                self.shard_dir.mkdir(parents=True, exist_ok=True)
                self.shard = qe.EdgeShard.create(str(self.shard_dir), create)
            elif (self.shard_dir / "edge_config.json").exists():
                self.shard = qe.EdgeShard.load(str(self.shard_dir))
            else:
                raise CollectionNotFoundError(f"collection directory {self.shard_dir} is missing")
        except BaseException:
            self._unlock()
            raise
        return self.shard

    def release(self) -> None:
        """Flush, close and unlock (mutex held)."""
        if self.shard is not None:
            try:
                if self.dirty:
                    self.shard.flush()
                self.shard.close()
            finally:
                self.shard = None
                self.dirty = False
                self._unlock()

    def someone_waits(self) -> bool:
        try:
            return self.want_path.stat().st_mtime_ns > self._acquired_ns
        except FileNotFoundError:
            return False

    def forget_after_fork(self) -> None:
        """In a forked child: drop the parent's handles without touching the files."""
        self.mutex = threading.RLock()
        if self.shard is not None:
            # Never close/drop the inherited shard here: its WAL lock belongs to the parent.
            _FORK_LEFTOVERS.append(self.shard)
        self.shard = None
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)  # the parent keeps its own descriptor and its flock
        self._fd = None

    def _lock(self, timeout_s: float) -> None:
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + timeout_s
        next_want = 0.0
        delay = 0.002
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    os.close(fd)
                    raise
            now = time.monotonic()
            if now >= deadline:
                os.close(fd)
                raise VectorStoreBusyError(f"{self.shard_dir} is busy in another process")
            if now >= next_want:
                # Tell the holder we are waiting; it releases after its current operation.
                self.want_path.touch()
                next_want = now + _WANT_REFRESH_S
            time.sleep(delay)
            delay = min(delay * 2, 0.02)
        self._fd = fd
        self._acquired_ns = time.time_ns()

    def _unlock(self) -> None:
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None


# Leases are per process and keyed by shard directory, so several store objects pointing
# at the same root share one open shard instead of locking each other out.
_LEASES: dict[Path, ShardLease] = {}
_FORK_LEFTOVERS: list[qe.EdgeShard] = []
_LEASES_LOCK = threading.Lock()
_REAPER_STARTED = False


def lease_for(shard_dir: Path, lock_path: Path, want_path: Path) -> ShardLease:
    global _REAPER_STARTED
    with _LEASES_LOCK:
        lease = _LEASES.get(shard_dir)
        if lease is None:
            lease = ShardLease(shard_dir=shard_dir, lock_path=lock_path, want_path=want_path)
            _LEASES[shard_dir] = lease
        if not _REAPER_STARTED:
            threading.Thread(target=_reap_forever, name="edge-lease-reaper", daemon=True).start()
            _REAPER_STARTED = True
        return lease


def _reap_forever() -> None:
    """Close idle shards and hand shards over to waiting processes."""
    while True:
        time.sleep(_REAPER_INTERVAL_S)
        with _LEASES_LOCK:
            leases = list(_LEASES.values())
        for lease in leases:
            if lease.shard is None or not lease.mutex.acquire(blocking=False):
                continue
            try:
                idle = time.monotonic() - lease.last_used
                if lease.shard is not None and (idle >= lease.linger_s or lease.someone_waits()):
                    lease.release()
            except Exception:
                logger.exception("failed to release edge shard %s", lease.shard_dir)
            finally:
                lease.mutex.release()


def _after_fork_in_child() -> None:
    global _REAPER_STARTED
    for lease in _LEASES.values():
        lease.forget_after_fork()
    _LEASES.clear()
    _REAPER_STARTED = False


os.register_at_fork(after_in_child=_after_fork_in_child)
