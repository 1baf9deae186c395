"""Session folders, file names and the job queue, without a server."""
from __future__ import annotations

import threading
import time

import pytest

from dfdnet.app.sessions import SessionStore, safe_file_name


def test_safe_file_name_keeps_no_path_and_no_odd_character():
    assert safe_file_name('../../etc/passwd') == 'passwd'
    assert safe_file_name('C:\\Users\\me\\Grand-mère 1952.JPG') == 'Grand-m_re_1952.jpg'
    assert safe_file_name('') == 'upload'
    assert safe_file_name('..') == 'upload'
    assert safe_file_name('.hidden') == 'upload.hidden'
    assert len(safe_file_name('a' * 500 + '.png')) <= 84


def test_sessions_have_their_own_folders_and_expire(tmp_path):
    store = SessionStore(tmp_path, ttl_s=60)
    first, second = store.create(), store.create()
    assert first.folder != second.folder and first.token != second.token
    assert store.get(first.token) is first and store.get('someone-else') is None
    job = first.new_job('photo.jpg', 'photo')
    job.upload.write_bytes(b'x')
    assert job.upload.parent.parent.parent == first.folder
    idle = second.new_job('clip.mp4', 'video')
    idle.state = 'done'
    later = time.monotonic() + 61
    assert store.sweep(later) == 1  # the session with a queued job stays
    assert first.folder.is_dir() and not second.folder.exists()
    job.state = 'done'
    assert store.sweep(later) == 1 and not first.folder.exists()
    store.close()
    assert not tmp_path.exists()


def test_queue_holds_a_bounded_number_of_jobs(tmp_path):
    from dfdnet.app.service import JobQueue, QueueFull

    session = SessionStore(tmp_path, 60).create()
    queue = JobQueue(workers=1, size=1)
    release = threading.Event()
    jobs = [session.new_job(f'{i}.png', 'photo') for i in range(3)]
    first = queue.submit(jobs[0], lambda job: release.wait(10))
    second = queue.submit(jobs[1], lambda job: 'second')
    deadline = time.monotonic() + 5
    while jobs[0].state != 'running' and time.monotonic() < deadline:
        time.sleep(0.01)
    assert queue.position(jobs[1]) == 1 and queue.running == 1
    with pytest.raises(QueueFull, match='busy'):
        queue.submit(jobs[2], lambda job: None)
    release.set()
    assert first.result(5) is True and second.result(5) == 'second'
    assert queue.running == 0 and queue.waiting == 0
    queue.submit(jobs[2], lambda job: None).result(5)  # room again
    queue.shutdown()
