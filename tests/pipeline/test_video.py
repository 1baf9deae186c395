"""Videos through test_FaceDict.py: frames, rate and audio kept, faces tracked and batched across
frames, a broken video reported while the rest goes on, and steady restored faces on a still scene
with fresh sensor noise (the shipped model)."""
from __future__ import annotations

import json
from fractions import Fraction

import cv2
import numpy as np
import pytest

from conftest import IdentityGenerator
from dfdnet.cli.restore import main
from dfdnet.data.synthetic_video import noisy_frames, write_clip
from dfdnet.face.paste import canvas_masks, upscale_image
from dfdnet.metrics.temporal import temporal_change
from dfdnet.pipeline.options import RestoreOptions
from dfdnet.pipeline.photo import PhotoRestorer, build_preparer, shipped_model_dir
from dfdnet.pipeline.restorer import CropRestorer
from dfdnet.pipeline.runner import FolderRestoration
from dfdnet.pipeline.video import VideoRestoration
from dfdnet.utils.image_io import read_image, read_rgb
from dfdnet.utils.video_io import VideoReader

pytest.importorskip('av')
PHOTO = 'TestData/astronaut_pair.jpg'  # 448 x 224, two faces


def _frames(path):
    with VideoReader(path) as reader:
        return reader.info, [frame.rgb for frame in reader.frames()]


@pytest.fixture(scope='module')
def still_photo(request):
    return read_rgb(request.config.rootpath / PHOTO)


def test_video_among_photos_with_a_broken_one(tmp_path, still_photo):
    """An identity network pastes the unchanged crops back: every output frame must be its input
    frame upscaled (the scene pans, so a frame out of order would show), with the input's rate and audio."""
    inputs = tmp_path / 'in'
    inputs.mkdir()
    write_clip(inputs / 'clip.mp4', noisy_frames(still_photo, 6, noise_sigma=2.0, pan_px=3.0), fps=24)
    cv2.imwrite(str(inputs / 'photo.png'), still_photo[:, :, ::-1])
    (inputs / 'broken.mov').write_bytes(b'\x00\x00\x00\x14ftypqt   not a movie')
    results = tmp_path / 'out'
    options = RestoreOptions(test_path=inputs, results_dir=results, upscale_factor=2, batch_size=4, save_frames=True)
    photo = PhotoRestorer(build_preparer(options, 512), CropRestorer(IdentityGenerator(), batch_size=4),
                          upscale_factor=2)
    summary = FolderRestoration(options, photo).run()

    assert list(summary.failed) == [inputs / 'broken.mov'] and 'broken.mov' in summary.failed[inputs / 'broken.mov']
    video, = summary.videos
    faces = video['faces_restored']  # 2 per frame; HOG's weak false face on the suit in frames 2 and 4 is not
    assert summary.images_done == 2 and summary.faces_restored == 2 + faces and faces == 12
    assert summary.forward_calls == 1 + -(-faces // 4)  # the photo's 2 faces, then the video's in batches of 4
    assert (video['frames'], video['audio']) == (6, 'copied')
    info, restored = _frames(results / 'Step4_FinalResults' / 'clip.mp4')
    source_info, source = _frames(inputs / 'clip.mp4')
    assert (info.width, info.height, info.fps, info.frames, info.audio_codec) == (896, 448, Fraction(24), 6, 'aac')
    errors = np.array([[np.abs(upscale_image(before, 2).astype(int) - after).mean() for after in restored]
                       for before in source])
    assert errors.diagonal().max() < 2.5  # H.264 and 4:2:0 rounding only
    assert (errors + 100 * np.eye(6)).min() > 2 * errors.diagonal().max()  # and not another frame
    saved = sorted(p.name for p in (results / 'Step4_FinalResults' / 'clip').iterdir())
    assert saved == [f'{i:06d}.png' for i in range(6)]
    assert len(list((results / 'Step3_RestoreCropFace' / 'clip').iterdir())) == faces
    np.testing.assert_array_equal(read_image(results / 'Step0_Input' / 'clip.png'), source[0])  # the poster
    page = (results / 'index.html').read_text()
    assert 'href="Step4_FinalResults/clip.mp4"' in page and 'src="Step4_FinalResults/clip.png"' in page
    assert 'FAILED' in page and not list(results.rglob('.*.tmp*'))
    assert json.loads(summary.write_json(tmp_path / 's.json').read_text())['videos'][0]['frames'] == 6


def test_restored_faces_of_a_still_noisy_scene_are_steady(tmp_path, still_photo):
    """The shipped model on 4 frames of a still scene with fresh noise: inside the faces, the
    restored frames change from one to the next no more than the input does (the CLI runs it)."""
    clip = write_clip(tmp_path / 'still.mp4', noisy_frames(still_photo, 4, noise_sigma=4.0, seed=1))
    model = shipped_model_dir()
    results = tmp_path / 'out'
    code = main(['--test_path', str(clip), '--results_dir', str(results), '--upscale_factor', '2', '--gpu_ids', '-1',
                 '--checkpoint', str(model / 'net_g.pth'), '--dict_dir', str(model / 'dictionaries'),
                 '--precision', 'fp32', '--no_html'])
    assert code == 0
    photo = PhotoRestorer(build_preparer(RestoreOptions(), 512), CropRestorer(IdentityGenerator()), upscale_factor=2)
    faces, _, _ = photo.prepare(still_photo)
    assert len(faces) == 2
    region = canvas_masks(faces, (448, 896), 512, 2) > 0.5
    _, inputs = _frames(clip)
    info, restored = _frames(results / 'Step4_FinalResults' / 'still.mp4')
    assert info.frames == 4 and info.audio_codec == 'aac'
    input_change = temporal_change([upscale_image(f, 2) for f in inputs], region)
    restored_change = temporal_change(restored, region)
    assert restored_change <= input_change, (restored_change, input_change)
    summary = json.loads((results / 'summary.json').read_text())
    assert summary['videos'][0]['faces_restored'] == 8 and summary['faces_restored'] == 8


def test_videos_need_whole_frame_mode(tmp_path, still_photo):
    clip = write_clip(tmp_path / 'c.mp4', noisy_frames(still_photo, 2), audio_hz=None)
    options = RestoreOptions(test_path=clip, results_dir=tmp_path / 'out', aligned=True, write_html=False)
    photo = PhotoRestorer(build_preparer(options, 512), CropRestorer(IdentityGenerator()))
    summary = FolderRestoration(options, photo).run()
    assert 'without --aligned' in summary.failed[clip]
    with pytest.raises(RuntimeError, match='aligned mode'):
        VideoRestoration(photo).run(clip, tmp_path / 'x.mp4')
    assert not (tmp_path / 'x.mp4').exists()
