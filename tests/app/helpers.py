"""Helpers of the app tests: the app served by uvicorn in a thread on a free loopback port, and an
HTTP client with its own cookie jar (one client = one browser session)."""
from __future__ import annotations

import http.cookiejar
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
# Where the astronaut's face lies in face_photo (x0, y0, x1, y1, input pixels; dlib's box of it).
FACE_BOX = (64, 32, 96, 64)


class Answer:
    def __init__(self, status: int, headers, body: bytes):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def image(self) -> np.ndarray:
        return cv2.imdecode(np.frombuffer(self.body, np.uint8), cv2.IMREAD_UNCHANGED)


def encode_multipart(fields: dict, files: dict) -> tuple:
    """(body, content type) of a multipart/form-data form; files: {field: (file name, bytes)}."""
    boundary = secrets.token_hex(12)
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
             for name, value in fields.items()]
    parts += [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{file_name}"\r\n'
              'Content-Type: application/octet-stream\r\n\r\n'.encode() + data + b'\r\n'
              for name, (file_name, data) in files.items()]
    return b''.join(parts) + f'--{boundary}--\r\n'.encode(), f'multipart/form-data; boundary={boundary}'


class Client:
    """An HTTP client with its own cookies: one session of the app."""

    def __init__(self, base: str):
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def request(self, path: str, data: bytes | None = None, headers=None) -> Answer:
        request = urllib.request.Request(self.base + path, data=data, headers=headers or {})
        try:
            with self.opener.open(request, timeout=120) as response:
                return Answer(response.status, response.headers, response.read())
        except urllib.error.HTTPError as exc:
            return Answer(exc.code, exc.headers, exc.read())

    def get(self, path: str) -> Answer:
        return self.request(path)

    def post(self, path: str, fields=None, files=None) -> Answer:
        body, content_type = encode_multipart(fields or {}, files or {})
        return self.request(path, body, {'Content-Type': content_type})

    def wait_for_job(self, job: dict, seconds: float = 120.0) -> dict:
        deadline = time.monotonic() + seconds
        while job['state'] in ('queued', 'running') and time.monotonic() < deadline:
            time.sleep(0.2)
            job = self.get(f'/api/jobs/{job["id"]}').json()
        return job


class ServerThread:
    """``app`` served by uvicorn on 127.0.0.1 and a free port, in a daemon thread."""

    def __init__(self, app):
        import uvicorn

        self.app = app
        self.server = uvicorn.Server(uvicorn.Config(app, host='127.0.0.1', port=0, log_level='warning'))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.server.started, 'the app did not start'
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f'http://127.0.0.1:{port}'

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=30)


def make_app(tmp_root: Path, settings: dict, options: dict):
    """The app with these ``AppSettings`` and ``RestoreOptions`` (CPU), its sessions under ``tmp_root``."""
    pytest.importorskip('fastapi', reason='the app needs fastapi (requirements.txt)')
    from dfdnet.app.server import create_app
    from dfdnet.app.settings import AppSettings
    from dfdnet.pipeline.options import RestoreOptions

    return create_app(AppSettings(work_dir=tmp_root, **settings), RestoreOptions(device='cpu', **options))


def face_difference(restored: np.ndarray, photo: Path) -> tuple:
    """Mean absolute difference of ``restored`` (BGR, twice ``photo``'s size) from ``photo`` upscaled
    with bicubic: (inside FACE_BOX, outside it)."""
    source = cv2.imread(str(photo))
    upscaled = cv2.resize(source, (restored.shape[1], restored.shape[0]), interpolation=cv2.INTER_CUBIC)
    difference = np.abs(upscaled.astype(np.float32) - restored[:, :, :3].astype(np.float32)).mean(axis=2)
    x0, y0, x1, y1 = (2 * v for v in FACE_BOX)
    inside = difference[y0:y1, x0:x1]
    outside_mask = np.ones(difference.shape, bool)
    outside_mask[y0:y1, x0:x1] = False
    return float(inside.mean()), float(difference[outside_mask].mean())
