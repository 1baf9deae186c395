"""The server's own options (the restore options are ``RestoreOptions``'s), declared once each."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dfdnet.utils.options import option

LOCAL_HOSTS = ('127.0.0.1', 'localhost', '::1')


@dataclass
class AppSettings:
    """How ``dfdnet-app`` serves: address, concurrency, queue and upload bounds, session lifetime."""
    host: str = option('127.0.0.1', 'address to listen on; 0.0.0.0 opens the app to every machine that can reach '
                       'this one (a warning is printed)', group='server')
    port: int = option(7860, 'port to listen on', group='server')
    jobs: int = option(1, 'restorations that run at a time (they share the one model in memory)', group='server')
    queue_size: int = option(8, 'jobs that may wait; further uploads are refused (HTTP 503) until one finishes',
                             group='server')
    max_upload_mb: float = option(50.0, 'largest upload in MB (10^6 bytes): a photo or a video', group='server')
    session_minutes: float = option(60.0, "a session's files are deleted this long after its last request",
                                    group='server')
    work_dir: Path | None = option(None, 'folder for the sessions\' temporary folders (default: the system\'s '
                                   'temporary folder)', group='server')
    preload: bool = option(True, 'load the model on the first job instead of at start', flag='--no_preload',
                           negate=True, group='server')

    def __post_init__(self):
        if self.work_dir is not None:
            self.work_dir = Path(self.work_dir)
        if self.jobs < 1 or self.queue_size < 0:
            raise ValueError(f'--jobs must be >= 1 and --queue_size >= 0, got {self.jobs} and {self.queue_size}')
        if self.max_upload_mb <= 0 or self.session_minutes <= 0:
            raise ValueError('--max_upload_mb and --session_minutes must be > 0')
        if not 0 <= self.port <= 65535:
            raise ValueError(f'--port must be within [0, 65535], got {self.port}')

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1e6)

    @property
    def is_local(self) -> bool:
        """True when only this machine can reach the server."""
        return self.host in LOCAL_HOSTS or self.host.startswith('127.')
