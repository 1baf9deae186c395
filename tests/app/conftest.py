"""Fixtures of the app tests: two servers (one with the default model, one that never loads it) and
a small face photo."""
from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from app.helpers import ROOT, ServerThread, make_app


@pytest.fixture(scope='session')
def face_photo(tmp_path_factory) -> Path:
    """TestData/astronaut_lq.jpg at 192 x 192 (one face that dlib finds; about 1 s to restore)."""
    image = cv2.imread(str(ROOT / 'TestData' / 'astronaut_lq.jpg'))
    path = tmp_path_factory.mktemp('photos') / 'astronaut.png'
    cv2.imwrite(str(path), cv2.resize(image, (192, 192), interpolation=cv2.INTER_AREA))
    return path


@pytest.fixture(scope='session')
def app_server(tmp_path_factory):
    """(app, base URL) of the app with the default model, upscale 2 by default, loading at start."""
    app = make_app(tmp_path_factory.mktemp('app'), {}, {'upscale_factor': 2})
    with ServerThread(app) as base:
        yield app, base


@pytest.fixture(scope='session')
def light_server(tmp_path_factory):
    """(app, base URL) of an app that never loads a model here: 1 job at a time and no queue,
    uploads of 0.2 MB and 1 MP at most."""
    app = make_app(tmp_path_factory.mktemp('light'), {'queue_size': 0, 'max_upload_mb': 0.2, 'preload': False},
                   {'max_input_megapixels': 1.0})
    with ServerThread(app) as base:
        yield app, base
