"""Hostile inputs to the restore pipeline (issue 31): each test reproduces one fault class with
small synthetic inputs and a stand-in network (no model weights, except where the command line
itself is the point)."""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
import torch

from conftest import IdentityGenerator
from dfdnet.cli.restore import main
from dfdnet.face.landmarks import LandmarkError, read_landmarks
from dfdnet.pipeline.options import RestoreOptions
from dfdnet.pipeline.photo import PhotoRestorer, build_preparer
from dfdnet.pipeline.restorer import CropRestorer
from dfdnet.pipeline.results_folder import results_lock
from dfdnet.pipeline.runner import FolderRestoration, list_restore_inputs
from dfdnet.pipeline.summary import RunSummary
from dfdnet.utils.image_io import ImageSizeError, read_rgb, write_image
from dfdnet.utils.run_lock import FolderLock, FolderLockedError
from dfdnet.utils.text import SafeFormatter, printable

PHOTO = 'TestData/astronaut_pair.jpg'  # 448 x 224, two faces


@pytest.fixture(scope='module')
def preparer():
    """Detector and landmark models, loaded once for the module."""
    return build_preparer(RestoreOptions(), 512)


@pytest.fixture(scope='module')
def pair_photo(request):
    return read_rgb(request.config.rootpath / PHOTO)


def _restoration(tmp_path, preparer, generator=None, exclusive=False, **options):
    options = RestoreOptions(test_path=tmp_path / 'in', results_dir=tmp_path / 'out', upscale_factor=1,
                             write_html=False, **options)
    photo = PhotoRestorer(preparer, CropRestorer(generator or IdentityGenerator()), upscale_factor=1)
    return FolderRestoration(options, photo, exclusive=exclusive)


def _noise(height=48, width=64, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


class FirstFaceNaN(torch.nn.Module):
    """Returns its input, with NaN in the first face of every batch (as broken weights give)."""

    def forward(self, images, boxes):
        out = images.clone()
        out[0, :, 100:300, 100:300] = float('nan')
        return out


# 1 ---------------------------------------------------------------------------------------------
def test_a_video_cut_short_is_a_failure(tmp_path, preparer):
    av = pytest.importorskip('av')
    clip = tmp_path / 'in' / 'cut.mp4'
    clip.parent.mkdir()
    container = av.open(str(clip), 'w', format='mp4', options={'movflags': 'faststart'})  # the index first
    stream = container.add_stream('libx264', rate=10)
    stream.width, stream.height, stream.pix_fmt, stream.options = 64, 64, 'yuv420p', {'g': '1'}
    for index in range(40):
        frame = av.VideoFrame.from_ndarray(_noise(64, 64, index), format='rgb24')
        frame.pts, frame.time_base = index, Fraction(1, 10)
        container.mux(stream.encode(frame))
    container.mux(stream.encode())
    container.close()
    clip.write_bytes(clip.read_bytes()[:clip.stat().st_size // 8])  # the container still promises 40 frames
    summary = _restoration(tmp_path, preparer).run()
    reason = summary.failed[clip]
    assert 'of the 40 frames' in reason and 'cut short' in reason and not summary.ok
    assert summary.videos[0]['frames'] < summary.videos[0]['frames_expected'] == 40


# 2 ---------------------------------------------------------------------------------------------
def test_image_named_links_that_cannot_be_read_are_reported(tmp_path, preparer):
    inputs = tmp_path / 'in'
    write_image(inputs / 'good.png', _noise())
    os.symlink(inputs / 'missing.png', inputs / 'dangling.png')
    os.symlink(inputs / 'loop_b.jpg', inputs / 'loop_a.jpg')
    os.symlink(inputs / 'loop_a.jpg', inputs / 'loop_b.jpg')
    os.symlink(inputs / 'gone.mp4', inputs / 'clip.mp4')
    assert len(list_restore_inputs(inputs)) == 5
    summary = _restoration(tmp_path, preparer).run()
    assert summary.images_done == 1 and len(summary.failed) == 4
    assert all('link that cannot be followed' in reason for reason in summary.failed.values())


# 3 ---------------------------------------------------------------------------------------------
def test_a_face_whose_output_is_not_finite_is_skipped_not_pasted(tmp_path, preparer, pair_photo):
    write_image(tmp_path / 'in' / 'pair.png', pair_photo)
    summary = _restoration(tmp_path, preparer, FirstFaceNaN()).run()
    assert summary.ok and summary.faces_restored == 1 and summary.faces_detected == 2
    skipped, = summary.faces_skipped
    assert skipped['face'] == 0 and 'not finite' in skipped['reason']
    assert sorted(p.name for p in (tmp_path / 'out' / 'Step3_RestoreCropFace').iterdir()) == ['pair_01.png']
    final = read_rgb(tmp_path / 'out' / 'Step4_FinalResults' / 'pair.png')
    assert np.abs(final.astype(int) - pair_photo).mean() < 1  # no black face pasted
    photo = PhotoRestorer(preparer, CropRestorer(FirstFaceNaN()), upscale_factor=1)
    result = photo.enhance(pair_photo)  # the library call skips and reports it too
    assert len(result.restored_faces) == 1 and 'not finite' in result.skipped[-1].reason
    assert np.abs(result.image.astype(int) - pair_photo).mean() < 1


# 4 ---------------------------------------------------------------------------------------------
def test_a_second_run_into_a_locked_results_folder_is_refused(tmp_path, capsys):
    write_image(tmp_path / 'in' / 'a.png', _noise())
    with results_lock(tmp_path / 'out'):
        code = main(['--test_path', str(tmp_path / 'in'), '--results_dir', str(tmp_path / 'out'), '--gpu_ids', '-1'])
        assert code == 2 and 'in use by another run' in capsys.readouterr().err
        with pytest.raises(FolderLockedError, match=f'pid {os.getpid()}'):
            results_lock(tmp_path / 'out').acquire()
    assert not (tmp_path / 'out' / 'Step0_Input').exists()


def test_a_stale_lock_of_a_killed_run_is_taken_over(tmp_path):
    dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'], capture_output=True, text=True)
    path = tmp_path / '.lock'
    path.write_text(f'pid {dead.stdout.strip()} on {os.uname().nodename}')  # left by a killed run: not locked
    with FolderLock(path, 'results folder') as lock:
        assert lock.stale_owner.startswith('pid ') and f'pid {os.getpid()}' in path.read_text()
    assert not path.exists()


# 5 ---------------------------------------------------------------------------------------------
def test_a_rerun_removes_the_earlier_per_face_files_of_a_photo(tmp_path, preparer, pair_photo, caplog):
    caplog.set_level('INFO')
    write_image(tmp_path / 'in' / 'photo.png', pair_photo)
    write_image(tmp_path / 'in' / 'photo_01.png', _noise())  # another photo, named like a face file
    _restoration(tmp_path, preparer).run()
    out = tmp_path / 'out'
    assert (out / 'Step3_RestoreCropFace' / 'photo_01.png').exists()
    write_image(tmp_path / 'in' / 'photo.png', _noise(224, 448))  # now without a face
    summary = _restoration(tmp_path, preparer).run()
    assert summary.ok and summary.faces_restored == 0
    for step in ('Step1_CropImg', 'Step1_AffineParam', 'Step2_Landmarks', 'Step3_RestoreCropFace'):
        assert not list((out / step).glob('photo_0*.*')), step
    assert (out / 'Step0_Input' / 'photo_01.png').exists() and (out / 'Step4_FinalResults' / 'photo_01.png').exists()
    assert 'removed 8 per-face file(s) of an earlier run' in caplog.text


# 7 ---------------------------------------------------------------------------------------------
def test_a_full_disk_at_the_summary_is_a_message_not_a_traceback(tmp_path, capsys, small_model_files, monkeypatch):
    checkpoint, dicts = small_model_files
    write_image(tmp_path / 'in' / 'a.png', _noise())

    def full_disk(self, path):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(RunSummary, 'write_json', full_disk)
    code = main(['--test_path', str(tmp_path / 'in'), '--results_dir', str(tmp_path / 'out'), '--gpu_ids', '-1',
                 '--checkpoint', str(checkpoint), '--dict_dir', str(dicts), '--no_html'])
    err = capsys.readouterr().err
    assert code == 1 and 'summary.json' in err and os.strerror(errno.ENOSPC) in err and 'Traceback' not in err


# 11 --------------------------------------------------------------------------------------------
@pytest.mark.parametrize('image', [np.zeros((0, 0, 3), np.uint8), np.zeros((0, 5), np.uint8), np.zeros(5, np.uint8),
                                   np.zeros((4, 4, 2), np.uint8), np.zeros((4, 4, 3), np.float32)])
def test_enhance_refuses_an_empty_or_odd_array_with_a_message(preparer, image):
    photo = PhotoRestorer(preparer, CropRestorer(IdentityGenerator()), upscale_factor=1)
    with pytest.raises(ValueError, match='image: (the image is empty|expected)'):
        photo.enhance(image)
    with pytest.raises(ValueError, match='image: '):
        photo.enhance_aligned(image)


# 12 --------------------------------------------------------------------------------------------
def test_detector_upsampling_is_capped_and_counted_in_the_pixel_limit(tmp_path, preparer):
    with pytest.raises(ValueError, match='--detector_upsample must be within'):
        RestoreOptions(detector_upsample=6)
    options = RestoreOptions(detector_upsample=3, max_input_megapixels=0.01)
    photo = PhotoRestorer(build_preparer(options, 512), CropRestorer(IdentityGenerator()), upscale_factor=1)
    with pytest.raises(ImageSizeError, match='--detector_upsample 3'):
        photo.enhance(_noise(60, 60))  # 480 x 480 px for the detector: more than 4 x 0.01 MP
    photo.enhance(_noise(20, 20))  # 160 x 160 px: fine
    write_image(tmp_path / 'in' / 'a.png', _noise(60, 60))
    restoration = _restoration(tmp_path, preparer, detector_upsample=3, max_input_megapixels=0.01)
    restoration.photo_restorer = photo
    summary = restoration.run()
    assert '--detector_upsample 3' in summary.failed[tmp_path / 'in' / 'a.png']
    assert not (tmp_path / 'out' / 'Step0_Input' / 'a.png').exists()  # refused before any work


# 13 --------------------------------------------------------------------------------------------
def test_control_characters_of_file_names_are_escaped_in_messages(tmp_path, preparer):
    assert printable('a\nb\x1b[2J\u202ec.png') == 'a\\nb\\x1b[2J\\u202ec.png'
    assert printable('Zoë 写真 \u200c.png') == 'Zoë 写真 \u200c.png'  # letters and joiners stay
    import logging

    record = logging.LogRecord('x', logging.ERROR, __file__, 1, '%s: failed', ('a\nERROR forged\x1b[31m',), None)
    assert SafeFormatter('%(levelname)s %(message)s').format(record) == 'ERROR a\\nERROR forged\\x1b[31m: failed'
    name = 'bad\nERROR forged line\x1b[2J.png'
    (tmp_path / 'in').mkdir()
    (tmp_path / 'in' / name).write_bytes(b'not an image')
    text = _restoration(tmp_path, preparer).run().format()
    assert '\x1b' not in text and 'bad\\nERROR forged line\\x1b[2J.png' in text
    assert not any(line.startswith('ERROR forged') for line in text.splitlines())


# 14 --------------------------------------------------------------------------------------------
def test_a_landmark_file_linked_to_another_file_never_shows_its_content(tmp_path, preparer):
    secret = tmp_path / 'secret.txt'
    secret.write_text('hunter2 token\n')
    landmarks = tmp_path / 'landmarks'
    landmarks.mkdir()
    os.symlink(secret, landmarks / 'face.png.txt')
    with pytest.raises(LandmarkError, match='line 1, column 1 is not a number') as caught:
        read_landmarks(landmarks / 'face.png.txt')
    assert 'hunter2' not in str(caught.value)
    (tmp_path / 'bin.txt').write_bytes(b'\xff\xfe secret bytes')
    with pytest.raises(LandmarkError, match='not a text file') as caught:
        read_landmarks(tmp_path / 'bin.txt')
    assert 'secret' not in str(caught.value.args[0]).replace(str(tmp_path), '')
    write_image(tmp_path / 'in' / 'face.png', _noise(512, 512))
    summary = _restoration(tmp_path, preparer, aligned=True, landmarks_dir=landmarks).run()
    assert 'hunter2' not in json.dumps(summary.to_dict())
    assert 'face.png.txt' in summary.failed[tmp_path / 'in' / 'face.png']


# 15 --------------------------------------------------------------------------------------------
@pytest.mark.parametrize('link', ['Step4_FinalResults', 'Step0_Input/sub'])
def test_a_step_folder_linked_into_the_inputs_is_refused(tmp_path, capsys, link):
    photo = tmp_path / 'in' / 'sub' / 'a.png'
    write_image(photo, _noise())
    before = photo.read_bytes()
    (tmp_path / 'out' / link).parent.mkdir(parents=True)
    os.symlink(tmp_path / 'in' / 'sub', tmp_path / 'out' / link)
    assert main(['--test_path', str(tmp_path / 'in'), '--results_dir', str(tmp_path / 'out'), '--gpu_ids', '-1']) == 2
    err = capsys.readouterr().err
    assert link.split('/')[-1] in err and 'could overwrite an input' in err and photo.read_bytes() == before


# 16 --------------------------------------------------------------------------------------------
def test_a_killed_runs_unfinished_video_is_removed_under_the_lock(tmp_path, preparer, caplog):
    caplog.set_level('INFO')
    write_image(tmp_path / 'in' / 'a.png', _noise())
    leftover = tmp_path / 'out' / 'Step4_FinalResults' / '.clip.mp4.a1B2c3D4.tmp.mp4'
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b'\x00' * 1000)  # fresh: a run without the lock cannot tell it from a live one's
    _restoration(tmp_path, preparer).run()
    assert leftover.exists()
    _restoration(tmp_path, preparer, exclusive=True).run()
    assert not leftover.exists() and 'removed 1 temporary file(s) left by an interrupted run' in caplog.text
