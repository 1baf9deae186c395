"""A lock on an output folder, so that two runs never write into it at once.

The lock is a file holding the owner's process id and host, locked with ``fcntl.flock``: the
system drops the lock when the process ends, however it ends, so a lock file left by a killed run
is recognised as stale and taken over. (Where ``fcntl`` is missing, the owner's process id is
checked instead.) While the lock is held no other run writes there, so every temporary file in
the folder is a killed run's and may be removed whatever its age.
"""
from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

logger = logging.getLogger(__name__)

try:
    import fcntl
except ImportError:  # not a POSIX system: the recorded process id is checked instead
    fcntl = None


class FolderLockedError(RuntimeError):
    """Another live run holds the lock (the message names the folder and that run)."""


class FolderLock:
    """An exclusive lock at ``path`` (e.g. ``<results>/.dfdnet-restore.lock``), taken by ``acquire``.

    what: the folder's role in messages ('results folder', 'experiment folder'); folder: the folder
    it guards, named in messages (default: the lock file's folder).
    ``stale_owner`` is the record of the killed run whose lock was taken over, else None.
    """

    def __init__(self, path, what: str = 'folder', folder=None):
        self.path = Path(path)
        self.what = what
        self.folder = Path(folder) if folder is not None else self.path.parent
        self.stale_owner: str | None = None
        self._fd: int | None = None

    def acquire(self) -> FolderLock:
        """Take the lock; ``FolderLockedError`` when a live run holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(10):
            fd = self._lock_once()
            try:  # the owner before may have removed the file between our open and our lock: lock the new one
                if os.path.samestat(os.fstat(fd), os.stat(self.path)):
                    self._fd = fd
                    return self
            except FileNotFoundError:
                pass
            os.close(fd)
        raise FolderLockedError(self._busy_message('another run keeps replacing the lock'))

    def _lock_once(self) -> int:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            previous = os.read(fd, 200).decode('utf-8', 'replace').strip()
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise FolderLockedError(self._busy_message(previous)) from None
            elif _owner_alive(previous):
                raise FolderLockedError(self._busy_message(previous))
            if previous:
                self.stale_owner = previous
                logger.warning('%s: taking over the lock that a killed or crashed run (%s) left on the %s %s',
                               self.path, previous, self.what, self.folder)
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, f'pid {os.getpid()} on {socket.gethostname()}'.encode())
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def release(self) -> None:
        """Drop the lock and remove its file (once released, the file would only look stale)."""
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            logger.debug('cannot remove the lock file %s: %s', self.path, exc)
        finally:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def _busy_message(self, owner: str) -> str:
        return (f'the {self.what} {self.folder} is in use by another run ({owner or "owner unknown"}; lock file '
                f'{self.path}): wait for it to finish or choose another folder')

    def __enter__(self) -> FolderLock:
        return self.acquire() if self._fd is None else self

    def __exit__(self, *exc) -> None:
        self.release()


def _owner_alive(record: str) -> bool:
    """True when ``record`` ('pid N on HOST') names a process of this host that still runs."""
    parts = record.split()
    if len(parts) < 4 or parts[0] != 'pid' or not parts[1].isdigit():
        return False
    if parts[3] != socket.gethostname():
        return True  # another machine's run: it cannot be checked from here, so it counts as live
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists but belongs to someone else
        return True
    return True
