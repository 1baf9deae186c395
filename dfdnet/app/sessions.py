"""Sessions: each has its own temporary folder and jobs, and is deleted after it has been idle for
the set time. A session is named by a random token kept in a cookie; nothing of one session is
reachable from another."""
from __future__ import annotations

import logging
import re
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

ACTIVE_STATES = ('queued', 'running')
_UNSAFE = re.compile(r'[^A-Za-z0-9._-]+')


def safe_file_name(name: str | None, default: str = 'upload') -> str:
    """A file name made of letters, digits, '.', '_' and '-' (at most 100 characters, extension
    kept, lowercase), never empty and never a path."""
    name = Path(str(name or '').replace('\\', '/')).name
    stem, dot, ext = name.rpartition('.')
    if not dot:
        stem, ext = name, ''
    stem = _UNSAFE.sub('_', stem).strip('._')[:80] or default
    ext = _UNSAFE.sub('', ext)[:10].lower()
    return f'{stem}.{ext}' if ext else stem


@dataclass
class Job:
    """One upload and its restoration. files: {role: file name in ``folder``} of what can be
    fetched (input, restored, faces); status: the HTTP status of a failure."""
    id: str
    name: str
    kind: str  # 'photo' or 'video'
    folder: Path
    state: str = 'queued'  # queued, running, done, failed
    progress: float = 0.0
    message: str = ''
    status: int = 200
    files: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    @property
    def upload(self) -> Path:
        return self.folder / 'upload' / self.name

    def fail(self, message: str, status: int) -> None:
        self.state, self.message, self.status = 'failed', message.replace(f'{self.folder}/upload/', ''), status

    def to_dict(self, position: int = 0) -> dict:
        return {'id': self.id, 'name': self.name, 'kind': self.kind, 'state': self.state,
                'progress': round(self.progress, 3), 'position': position, 'message': self.message,
                'files': {role: f'/api/jobs/{self.id}/{name}' for role, name in self.files.items()},
                **self.info}


@dataclass
class Session:
    token: str
    folder: Path
    jobs: dict = field(default_factory=dict)
    last_used: float = field(default_factory=time.monotonic)

    def new_job(self, file_name: str | None, kind: str) -> Job:
        job_id = secrets.token_hex(8)
        job = Job(job_id, safe_file_name(file_name), kind, self.folder / job_id)
        job.upload.parent.mkdir(parents=True)
        self.jobs[job_id] = job
        return job

    def drop_job(self, job: Job) -> None:
        self.jobs.pop(job.id, None)
        shutil.rmtree(job.folder, ignore_errors=True)

    @property
    def busy(self) -> bool:
        return any(job.state in ACTIVE_STATES for job in self.jobs.values())


class SessionStore:
    """The sessions of one server, in folders under ``root``, deleted ``ttl_s`` after last use."""

    def __init__(self, root: Path, ttl_s: float):
        self.root = Path(root)
        self.ttl_s = float(ttl_s)
        self._sessions: dict = {}

    def get(self, token: str | None) -> Session | None:
        session = self._sessions.get(token) if token else None
        if session is not None:
            session.last_used = time.monotonic()
        return session

    def create(self) -> Session:
        token = secrets.token_urlsafe(24)
        folder = self.root / secrets.token_hex(8)  # the token itself never reaches the disk
        folder.mkdir(parents=True, mode=0o700)
        self._sessions[token] = session = Session(token, folder)
        logger.info('new session %s', folder.name)
        return session

    def get_or_create(self, token: str | None) -> Session:
        return self.get(token) or self.create()

    def sweep(self, now: float | None = None) -> int:
        """Delete the sessions idle for longer than the lifetime (not those with a job in
        progress); returns how many."""
        now = time.monotonic() if now is None else now
        expired = [token for token, s in self._sessions.items() if now - s.last_used > self.ttl_s and not s.busy]
        for token in expired:
            session = self._sessions.pop(token)
            shutil.rmtree(session.folder, ignore_errors=True)
            logger.info('session %s expired: its files are deleted', session.folder.name)
        return len(expired)

    def close(self) -> None:
        """Delete every session's files."""
        self._sessions.clear()
        shutil.rmtree(self.root, ignore_errors=True)
