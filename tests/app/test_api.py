"""The HTTP API against a real server (uvicorn on the loopback): the restored photo, bad input,
bounded uploads and queue, session isolation, and the command-line entry."""
from __future__ import annotations

import http.client
import io
import re
import threading
import zipfile
from urllib.parse import urlparse

import cv2
import numpy as np
import pytest

from app.helpers import ROOT, Client, face_difference

pytest.importorskip('fastapi', reason='the app needs fastapi (requirements.txt)')
STATIC = ROOT / 'dfdnet' / 'app' / 'static'


def png_bytes(image: np.ndarray) -> bytes:
    return cv2.imencode('.png', image)[1].tobytes()


def test_page_is_served_and_fetches_nothing_from_elsewhere(app_server):
    _, base = app_server  # started first: its model loads while the tests below run
    client = Client(base)
    page = client.get('/')
    assert page.status == 200 and b'id="files"' in page.body
    for name in ('index.html', 'app.js', 'app.css'):
        text = (STATIC / name).read_text()
        assert not re.search(r'https?://|//[a-z0-9.-]+\.[a-z]{2,}/|@import', text), name  # no CDN, font or script
        assert client.get(f'/static/{name}').status == 200
    status = client.get('/api/status').json()
    assert 'shipped' in status['models'] and status['defaults']['upscale_factor'] == 2
    assert status['choices']['paste_mask'] == ['face', 'released']


@pytest.mark.parametrize('fields, files, status, message', [
    ({}, {'image': ('notes.txt', b'not a photo at all')}, 400, r'notes\.txt: cannot decode \.txt files'),
    ({}, {'image': ('photo.jpg', b'\xff\xd8\xff\xe0 truncated')}, 400, r'photo\.jpg: cannot decode the image'),
    ({}, {'image': ('empty.png', b'')}, 400, r'empty\.png: the file is empty'),
    ({}, {'file': ('photo.png', b'x')}, 400, r"no file in the form field 'image'"),
    ({'upscale_factor': 'two'}, {'image': ('a.png', b'x')}, 400, r"upscale_factor: 'two' is not a whole number"),
    ({'upscale_factor': '0'}, {'image': ('a.png', b'x')}, 400, r'upscale_factor must be >= 1'),
    ({'fidelity': '3'}, {'image': ('a.png', b'x')}, 400, r'fidelity must be within \[0, 1\]'),
    ({'color_fix': 'sepia'}, {'image': ('a.png', b'x')}, 400, r'color_fix must be one of none, adain, wavelet'),
    ({'model': 'theirs'}, {'image': ('a.png', b'x')}, 400, r"model: 'theirs' is not one of: shipped"),
    ({}, {'image': ('wide.png', png_bytes(np.zeros((1000, 1100), np.uint8)))}, 413, r'wide\.png: 1100x1000 px .* limit of 1 MP'),
    ({}, {'image': ('big.png', bytes(300_000))}, 413, r'larger than the limit of 0\.2 MB'),
])
def test_bad_input_gets_a_json_message_and_a_4xx(light_server, fields, files, status, message):
    _, base = light_server
    client = Client(base)
    answer = client.post('/api/restore', fields, files)
    assert answer.status == status
    assert answer.headers['content-type'] == 'application/json'
    assert re.search(message, answer.json()['error']), answer.json()
    assert 'Traceback' not in answer.body.decode() and '/upload/' not in answer.body.decode()
    assert client.get('/api/status').status == 200  # the server lives on


def test_upload_without_length_is_cut_at_the_limit(light_server):
    _, base = light_server
    url = urlparse(base)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    chunks = iter([b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'] + [bytes(65536)] * 8)
    connection.request('POST', '/api/restore', body=chunks, encode_chunked=True,
                       headers={'Content-Type': 'multipart/form-data; boundary=b', 'Transfer-Encoding': 'chunked'})
    answer = connection.getresponse()
    assert answer.status == 413 and b'larger than the limit' in answer.read()
    connection.close()


def test_a_full_queue_answers_503_and_recovers(light_server):
    app, base = light_server
    session = app.state.store.create()
    release, started = threading.Event(), threading.Event()
    blocker = app.state.queue.submit(session.new_job('slow.png', 'photo'),
                                     lambda job: (started.set(), release.wait(20)))  # the only worker, no queue
    assert started.wait(10)
    client = Client(base)
    busy = client.post('/api/restore', {}, {'image': ('a.png', b'x')})
    assert busy.status == 503 and 'busy' in busy.json()['error']
    release.set()
    blocker.result(10)
    assert client.post('/api/restore', {}, {'image': ('a.txt', b'x')}).status == 400  # served again


def test_restore_returns_the_photo_twice_the_size_with_the_face_restored(app_server, face_photo):
    app, base = app_server
    answer = Client(base).post('/api/restore', {'upscale_factor': '2'},
                               {'image': (face_photo.name, face_photo.read_bytes())})
    assert answer.status == 200, answer.body[:300]
    assert answer.headers['content-type'] == 'image/png' and answer.headers['x-dfdnet-faces'] == '1'
    restored = answer.image()
    assert restored.shape == (384, 384, 3)
    inside, outside = face_difference(restored, face_photo)
    assert inside > 2.0 and outside < 1.0, (inside, outside)
    # the same pipeline as the command: PhotoRestorer.enhance with the same options and model
    from dfdnet.app.service import request_options
    from dfdnet.utils.image_io import read_image

    options = request_options(app.state.options, {'upscale_factor': '2'}, app.state.catalogue)
    expected = app.state.models.get(options).enhance(read_image(face_photo)).image
    np.testing.assert_array_equal(restored[:, :, ::-1], expected)


def test_sessions_see_only_their_own_jobs_and_files(app_server, face_photo):
    _, base = app_server
    owner, other = Client(base), Client(base)
    job = owner.post('/api/jobs', {'upscale_factor': '1', 'color_fix': 'adain'},
                     {'file': (face_photo.name, face_photo.read_bytes())}).json()
    job = owner.wait_for_job(job)
    assert job['state'] == 'done', job
    assert (job['width'], job['height'], job['faces']) == (192, 192, 1)
    assert set(job['files']) == {'input', 'restored', 'face00_before', 'face00_after'}
    for url in job['files'].values():
        assert owner.get(url).status == 200
        assert other.get(url).status == 404
    assert other.get(f'/api/jobs/{job["id"]}').status == 404
    assert other.get('/api/results.zip').status == 404
    archive = zipfile.ZipFile(io.BytesIO(owner.get('/api/results.zip').body))
    assert [name.split('_', 1)[1] for name in archive.namelist()] == ['astronaut_restored.png']


def test_restore_takes_a_video_and_returns_an_mp4(app_server, face_photo, tmp_path):
    from dfdnet.data.synthetic_video import noisy_frames, write_clip
    from dfdnet.utils.video_io import VideoReader

    clip = write_clip(tmp_path / 'clip.mp4', noisy_frames(cv2.imread(str(face_photo))[:, :, ::-1], 2), audio_hz=None)
    answer = Client(app_server[1]).post('/api/restore', {}, {'image': ('clip.mp4', clip.read_bytes())})
    assert answer.status == 200 and answer.headers['content-type'] == 'video/mp4', answer.body[:300]
    assert int(answer.headers['x-dfdnet-faces']) >= 1
    (tmp_path / 'out.mp4').write_bytes(answer.body)
    with VideoReader(tmp_path / 'out.mp4') as reader:
        assert (reader.info.width, reader.info.height, reader.info.frames) == (384, 384, 2)


def test_app_command_binds_the_loopback_and_warns_for_other_hosts(monkeypatch, capsys):
    import uvicorn

    from dfdnet.app import cli

    calls = []
    monkeypatch.setattr(uvicorn, 'run', lambda app, **kwargs: calls.append(kwargs))
    monkeypatch.setattr('dfdnet.app.server.create_app', lambda settings, options: (settings, options))
    assert cli.main(['--no_preload']) == 0
    assert calls[-1]['host'] == '127.0.0.1' and 'warning' not in capsys.readouterr().err
    assert cli.main(['--host', '0.0.0.0', '--port', '8123', '--upscale_factor', '2']) == 0
    assert calls[-1]['host'] == '0.0.0.0' and calls[-1]['port'] == 8123
    assert 'warning: --host 0.0.0.0' in capsys.readouterr().err
    assert '--test_path' not in cli.build_parser().format_help()
