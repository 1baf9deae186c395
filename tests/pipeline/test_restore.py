"""test_FaceDict.py end to end with a random-weight narrow model (512-px faces, 1/8 of the released
width, K = 4): the pipeline around the network is the point here (the released
network's parity is tested in test_parity.py). One module-scoped run over a small mixed folder
(3 faces in one batch) serves most assertions, plus one ``--aligned`` run (1 face).
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import IdentityGenerator
from dfdnet.cli.restore import main
from dfdnet.face.alignment import transform_points
from dfdnet.face.paste import soft_mask
from dfdnet.pipeline.options import RestoreOptions
from dfdnet.pipeline.photo import PhotoRestorer, build_preparer, resolve_model_paths
from dfdnet.utils.device import select_device
from dfdnet.utils.image_io import read_image, write_image

UPSCALE = 2


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope='module')
def whole_run(tmp_path_factory, shared_data, small_model_files):
    """Inputs: an RGBA photo with two faces (copied from shared data), a 16-bit grey photo with
    one face, a picture without a face in a subfolder, and a broken file. Upscale 2, batch 3."""
    checkpoint, dicts = small_model_files
    root = tmp_path_factory.mktemp('whole')
    inputs = root / 'inputs'
    (inputs / 'sub').mkdir(parents=True)
    shutil.copy(shared_data / 'whole' / 'old_photos' / 'old_w_scratch_d.png', inputs / 'rgba_two.png')
    grey = cv2.cvtColor(read_image(shared_data / 'whole' / 'dfdnet_testwhole' / 'test3.jpg'), cv2.COLOR_RGB2GRAY)
    write_image(inputs / 'grey16.png', grey.astype(np.uint16) * 257 + 100)
    ramp = np.tile(np.linspace(0, 255, 90).astype(np.uint8), (60, 1))
    write_image(inputs / 'sub' / 'noface.jpg', np.dstack([ramp, ramp[::-1], ramp]))
    (inputs / 'broken.jpg').write_bytes(b'\xff\xd8\xff\xe0 truncated')
    before = {p: _digest(p) for p in inputs.rglob('*') if p.is_file()}
    results = root / 'results'
    code = main(['--test_path', str(inputs), '--results_dir', str(results), '--upscale_factor', str(UPSCALE),
                 '--gpu_ids', '-1', '--checkpoint', str(checkpoint), '--dict_dir', str(dicts), '--batch_size', '3'])
    summary = json.loads((results / 'summary.json').read_text())
    return {'code': code, 'inputs': inputs, 'results': results, 'summary': summary, 'before': before}


def test_exit_status_and_summary(whole_run):
    summary = whole_run['summary']
    assert whole_run['code'] == 1  # the broken file failed; the others went on
    assert list(summary['failed']) == [str(whole_run['inputs'] / 'broken.jpg')]
    assert 'cannot decode' in summary['failed'][str(whole_run['inputs'] / 'broken.jpg')]
    assert summary['images_total'] == 4 and summary['images_done'] == 3
    assert summary['faces_detected'] == 3 and summary['faces_restored'] == 3 and summary['faces_skipped'] == []
    assert summary['images_without_face'] == [str(whole_run['inputs'] / 'sub' / 'noface.jpg')]
    assert summary['forward_calls'] == 1  # faces of two images shared one batch of 3
    assert summary['seconds_per_face'] > 0 and summary['stage_seconds']['restore'] > 0


def test_output_files_and_names(whole_run):
    results = whole_run['results']
    names = {step: sorted(p.relative_to(results / step).as_posix() for p in (results / step).rglob('*') if p.is_file())
             for step in ('Step0_Input', 'Step1_CropImg', 'Step1_AffineParam', 'Step2_Landmarks',
                          'Step3_RestoreCropFace', 'Step4_FinalResults')}
    faces = ['grey16_00', 'rgba_two_00', 'rgba_two_01']
    assert names['Step0_Input'] == ['grey16.png', 'rgba_two.png', 'sub/noface.png']
    assert names['Step1_CropImg'] == names['Step3_RestoreCropFace'] == [f + '.png' for f in faces]
    assert names['Step1_AffineParam'] == names['Step2_Landmarks'] == [f + '.txt' for f in faces]
    assert names['Step4_FinalResults'] == ['grey16.png', 'rgba_two.png', 'sub/noface.png']
    for face in faces:
        assert np.loadtxt(results / 'Step2_Landmarks' / f'{face}.txt').shape == (68, 2)
        assert read_image(results / 'Step3_RestoreCropFace' / f'{face}.png').shape == (512, 512, 3)
    html = (results / 'index.html').read_text()
    assert 'Step4_FinalResults/rgba_two.png' in html and 'Step3_RestoreCropFace/grey16_00.png' in html
    assert 'FAILED' in html and 'no face found' in html


def test_inputs_untouched(whole_run):
    after = {p: _digest(p) for p in whole_run['inputs'].rglob('*') if p.is_file()}
    assert after == whole_run['before']


def test_rgba_photo_keeps_alpha_and_gets_both_faces(whole_run):
    source = read_image(whole_run['inputs'] / 'rgba_two.png')
    final = read_image(whole_run['results'] / 'Step4_FinalResults' / 'rgba_two.png')
    height, width = source.shape[:2]
    assert final.shape == (height * UPSCALE, width * UPSCALE, 4) and final.dtype == np.uint8
    # a checkpoint of this project's format: bicubic resampling throughout (resolve_resampling)
    size = (width * UPSCALE, height * UPSCALE)
    np.testing.assert_array_equal(final[:, :, 3], cv2.resize(source[:, :, 3], size, interpolation=cv2.INTER_CUBIC))
    background = cv2.resize(source[:, :, :3], size, interpolation=cv2.INTER_CUBIC)
    for face in ('rgba_two_00', 'rgba_two_01'):
        paste_affine = np.loadtxt(whole_run['results'] / 'Step1_AffineParam' / f'{face}.txt')
        restored = read_image(whole_run['results'] / 'Step3_RestoreCropFace' / f'{face}.png')
        x, y = transform_points([[256, 256]], paste_affine)[0].round().astype(int)
        assert 0 <= x < width * UPSCALE and 0 <= y < height * UPSCALE
        # around the face centre the final image shows the restored face (warped into place), not the input
        warped = cv2.warpAffine(restored, paste_affine, size, flags=cv2.INTER_CUBIC)
        window = np.s_[y - 4:y + 5, x - 4:x + 5]
        to_restored = np.abs(final[window][:, :, :3].astype(int) - warped[window]).mean()
        to_input = np.abs(background[window].astype(int) - warped[window]).mean()
        assert to_restored <= 2 and to_input > 2 * to_restored + 1, (to_restored, to_input)


def test_grey_16_bit_stays_grey_16_bit(whole_run):
    source = read_image(whole_run['inputs'] / 'grey16.png')
    final = read_image(whole_run['results'] / 'Step4_FinalResults' / 'grey16.png')
    assert source.dtype == final.dtype == np.uint16 and final.ndim == 2
    assert final.shape == (source.shape[0] * UPSCALE, source.shape[1] * UPSCALE)
    upscaled = cv2.resize(source, final.shape[::-1], interpolation=cv2.INTER_CUBIC)  # 16-bit: no 8-bit rounding outside the face
    changed = final != upscaled
    paste_affine = np.loadtxt(whole_run['results'] / 'Step1_AffineParam' / 'grey16_00.txt')
    square = soft_mask(paste_affine, 512, final.shape, UPSCALE)
    assert not np.any(changed & (square == 0))  # only the face was touched, at full 16-bit precision
    centre = np.zeros((512, 512), np.float32)
    centre[200:330, 170:342] = 1  # eyes to mouth of an aligned face: inside the face-shaped mask
    centre = cv2.warpAffine(centre, paste_affine, final.shape[::-1]) > 0.99
    assert changed[centre].mean() > 0.9


def test_image_without_face_is_upscaled(whole_run):
    source = read_image(whole_run['inputs'] / 'sub' / 'noface.jpg')
    final = read_image(whole_run['results'] / 'Step4_FinalResults' / 'sub' / 'noface.png')
    np.testing.assert_array_equal(final, cv2.resize(source, (source.shape[1] * UPSCALE, source.shape[0] * UPSCALE),
                                                    interpolation=cv2.INTER_CUBIC))


def test_aligned_faces_with_landmark_files(tmp_path, shared_data, small_model_files):
    checkpoint, dicts = small_model_files
    name = 'n000024_0042_02.png'
    inputs = tmp_path / 'aligned'
    inputs.mkdir()
    shutil.copy(shared_data / 'faces_lq' / 'dfdnet_realvgg' / name, inputs / name)
    landmarks_dir = shared_data / 'faces_lq' / 'dfdnet_realvgg_landmarks'
    results = tmp_path / 'results'
    code = main(['--test_path', str(inputs), '--results_dir', str(results), '--gpu_ids', '-1', '--aligned',
                 '--landmarks_dir', str(landmarks_dir), '--checkpoint', str(checkpoint), '--dict_dir', str(dicts)])
    assert code == 0
    restored = read_image(results / 'Step3_RestoreCropFace' / 'n000024_0042_02.png')
    assert restored.shape == (512, 512, 3)
    np.testing.assert_allclose(np.loadtxt(results / 'Step2_Landmarks' / 'n000024_0042_02.txt'),
                               np.loadtxt(landmarks_dir / f'{name}.txt'))
    assert not (results / 'Step4_FinalResults').exists() and not (results / 'Step1_CropImg').exists()
    summary = json.loads((results / 'summary.json').read_text())
    assert summary['faces_restored'] == 1 and summary['images_done'] == 1


def test_missing_checkpoint_stops_before_any_work(tmp_path, capsys, small_model_files):
    _, dicts = small_model_files
    image = tmp_path / 'in.png'
    write_image(image, np.zeros((32, 32, 3), np.uint8))
    missing = tmp_path / 'nowhere' / 'latest_net_G.pth'
    results = tmp_path / 'results'
    code = main(['--test_path', str(image), '--results_dir', str(results), '--gpu_ids', '-1',
                 '--checkpoint', str(missing), '--dict_dir', str(dicts)])
    err = capsys.readouterr().err
    assert code == 2 and str(missing) in err
    # says plainly which weight files are needed and where
    assert 'checkpoints/facefh_dictionary/latest_net_G.pth' in err and 'DictionaryCenter512/' in err
    assert not results.exists()


def test_missing_dictionaries_stop_before_any_work(tmp_path, capsys, small_model_files):
    checkpoint, _ = small_model_files
    image = tmp_path / 'in.png'
    write_image(image, np.zeros((32, 32, 3), np.uint8))
    results = tmp_path / 'results'
    code = main(['--test_path', str(image), '--results_dir', str(results), '--gpu_ids', '-1',
                 '--checkpoint', str(checkpoint), '--dict_dir', str(tmp_path / 'no_dicts')])
    assert code == 2 and 'no_dicts' in capsys.readouterr().err
    assert not results.exists()


def test_no_images_and_bad_options(tmp_path, capsys):
    assert main(['--test_path', str(tmp_path), '--gpu_ids', '-1']) == 2
    assert 'no images or videos found' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(['--test_path', str(tmp_path), '--ext', 'gif'])


def test_device_selection_and_model_paths(caplog):
    assert select_device('-1') == select_device('cpu') == 'cpu'
    assert select_device('auto') == ('cuda:0' if torch.cuda.is_available() else 'cpu')
    assert 'CUDA is not available' not in caplog.text  # the default is quiet on a machine without CUDA
    if not torch.cuda.is_available():
        assert select_device('0') == select_device('cuda:1') == 'cpu' and 'CUDA is not available' in caplog.text
    with pytest.raises(ValueError, match='gpu'):
        select_device('gpu')
    checkpoint, dicts, source = resolve_model_paths(shipped_dir='nowhere')
    assert [checkpoint.as_posix(), dicts.as_posix()] == ['checkpoints/facefh_dictionary/latest_net_G.pth',
                                                         'DictionaryCenter512']


def test_model_choice_released_wins_then_shipped_then_given(tmp_path):
    released_ckpt, released_dicts = tmp_path / 'rel' / 'latest_net_G.pth', tmp_path / 'rel' / 'DictionaryCenter512'
    shipped = tmp_path / 'shipped'
    (shipped / 'dictionaries').mkdir(parents=True)
    (shipped / 'net_g.pth').write_bytes(b'x')
    kw = dict(released_checkpoint=released_ckpt, released_dict_dir=released_dicts, shipped_dir=shipped)
    checkpoint, dicts, source = resolve_model_paths(**kw)
    assert (checkpoint, dicts) == (shipped / 'net_g.pth', shipped / 'dictionaries') and 'default model' in source
    released_dicts.mkdir(parents=True)
    released_ckpt.write_bytes(b'x')
    checkpoint, dicts, source = resolve_model_paths(**kw)  # the user's released files win
    assert (checkpoint, dicts) == (released_ckpt, released_dicts) and source == 'the released DFDNet weights'
    checkpoint, dicts, source = resolve_model_paths('mine.pth', **kw)
    assert (checkpoint, dicts) == (Path('mine.pth'), released_dicts) and source == 'given'


def test_resampling_follows_the_checkpoint_format():
    """'auto': bicubic for this project's models (as their training), bilinear as released; a
    kernel given wins; an unknown one is refused when the face tools are built."""
    from dfdnet.archs.checkpoint import OWN_FORMAT
    from dfdnet.pipeline.faces import FacePreparer
    from dfdnet.pipeline.photo import resolve_resampling

    assert resolve_resampling('auto', OWN_FORMAT) == 'bicubic'
    assert resolve_resampling('auto', 'released') == resolve_resampling('auto', 'basicsr') == 'bilinear'
    assert resolve_resampling('auto') == 'bilinear'
    assert resolve_resampling('bilinear', OWN_FORMAT) == 'bilinear' and resolve_resampling('bicubic') == 'bicubic'
    with pytest.raises(ValueError, match="unknown resampling 'area'"):
        FacePreparer(512, None, resampling='area')
    with pytest.raises(ValueError, match='paste_transform must be one of'):
        FacePreparer(512, None, paste_transform='refit')
    with pytest.raises(ValueError, match='resampling'):
        RestoreOptions(resampling='nearest')


def test_many_faces_go_through_in_batches(tmp_path, shared_data):
    """The 28 faces of the Solvay photo with a stand-in network that returns its input: they go
    through in batches of 8 and pasting the unchanged crops back reproduces the photo."""
    from dfdnet.pipeline.restorer import CropRestorer
    from dfdnet.pipeline.runner import FolderRestoration

    source = shared_data / 'whole' / 'gpen_solvay' / 'Solvay_conference_1927.png'
    options = RestoreOptions(test_path=source, results_dir=tmp_path, upscale_factor=1, batch_size=8, write_html=False)
    photo = PhotoRestorer(build_preparer(options, 512), CropRestorer(IdentityGenerator(), batch_size=8), upscale_factor=1)
    summary = FolderRestoration(options, photo).run()
    assert summary.faces_restored == 28 and summary.forward_calls == 4
    assert len(list((tmp_path / 'Step3_RestoreCropFace').iterdir())) == 28
    final = read_image(tmp_path / 'Step4_FinalResults' / 'Solvay_conference_1927.png')
    image = read_image(source)
    assert final.shape == image.shape
    error = np.abs(final[:, :, :3].astype(int) - image[:, :, :3])
    # the paste-back is the alignment's exact inverse: only two bilinear resamples of each face
    # (the released refit misplaced faces: mean 0.036, max 26)
    assert error.mean() < 0.02 and error.max() <= 8, (error.mean(), error.max())
    result = photo.enhance(image)  # the library call gives what the command wrote
    assert len(result.faces) == len(result.restored_faces) == 28 and not result.skipped
    np.testing.assert_array_equal(result.image, final)
    np.testing.assert_array_equal(result.restored_faces[3],
                                  read_image(tmp_path / 'Step3_RestoreCropFace' / 'Solvay_conference_1927_03.png'))


def test_aligned_grey_and_rgba_16_bit_inputs_keep_their_kind(tmp_path, shared_data, caplog):
    from dfdnet.pipeline.options import RestoreOptions
    from dfdnet.pipeline.restorer import CropRestorer
    from dfdnet.pipeline.runner import FolderRestoration

    name = 'n000056_0060_01.png'
    face = read_image(shared_data / 'faces_lq' / 'dfdnet_realvgg' / name)
    inputs = tmp_path / 'in'
    write_image(inputs / 'small_grey.png', cv2.resize(cv2.cvtColor(face, cv2.COLOR_RGB2GRAY), (256, 256)))
    alpha = np.full((512, 512), 40000, np.uint16)
    write_image(inputs / name, np.dstack([face.astype(np.uint16) * 257, alpha]))
    landmarks_dir = shared_data / 'faces_lq' / 'dfdnet_realvgg_landmarks'
    options = RestoreOptions(test_path=inputs, results_dir=tmp_path / 'out', aligned=True, landmarks_dir=landmarks_dir)
    photo = PhotoRestorer(build_preparer(options, 512), CropRestorer(IdentityGenerator()))
    summary = FolderRestoration(options, photo).run()
    assert summary.ok and summary.faces_restored == 2 and summary.forward_calls == 1
    assert 'no landmark file' in caplog.text and 'small_grey.png' in caplog.text
    grey = read_image(tmp_path / 'out' / 'Step3_RestoreCropFace' / 'small_grey.png')
    assert grey.shape == (512, 512) and grey.dtype == np.uint8
    rgba = read_image(tmp_path / 'out' / 'Step3_RestoreCropFace' / 'n000056_0060_01.png')
    assert rgba.shape == (512, 512, 4) and rgba.dtype == np.uint16
    assert np.all(rgba[:, :, 3] == 40000) and np.all(rgba[:, :, :3] % 257 == 0)
    assert np.abs(rgba[:, :, :3].astype(int) // 257 - face).max() <= 1  # the stand-in returned the face
    np.testing.assert_allclose(np.loadtxt(tmp_path / 'out' / 'Step2_Landmarks' / 'n000056_0060_01.txt'),
                               np.loadtxt(landmarks_dir / f'{name}.txt'))


def test_results_paths_are_checked_before_any_work_and_never_overwrite_an_input(tmp_path, capsys):
    image = tmp_path / 'results' / 'Step4_FinalResults' / 'photo.png'
    write_image(image, np.full((32, 32, 3), 7, np.uint8))
    before = _digest(image)
    # the input lies inside the results folder: its own result would overwrite it
    assert main(['--test_path', str(image), '--results_dir', str(tmp_path / 'results'), '--gpu_ids', '-1']) == 2
    assert 'inside --results_dir' in capsys.readouterr().err and _digest(image) == before
    folder = tmp_path / 'photos'
    write_image(folder / 'a.png', np.zeros((32, 32, 3), np.uint8))
    assert main(['--test_path', str(folder), '--results_dir', str(folder), '--gpu_ids', '-1']) == 2
    assert 'is the input folder itself' in capsys.readouterr().err
    blocker = tmp_path / 'file.txt'
    blocker.write_text('x')
    for results in (blocker, blocker / 'sub'):
        assert main(['--test_path', str(folder), '--results_dir', str(results), '--gpu_ids', '-1']) == 2
        err = capsys.readouterr().err
        assert str(results) in err and ('is a file' in err or 'cannot be written' in err)
    assert not (tmp_path / 'photos' / 'Step0_Input').exists()


COMMANDS = ('restore', 'build_dictionary', 'train', 'align_faces', 'make_testset', 'evaluate', 'validate', 'export_model',
            'make_figure')


def test_help_is_instant_and_names_the_program():
    """--help of every command parses before torch, OpenCV and dlib are imported (start-up in a
    fraction of a second): all of them in one fresh process, which then has none of the three."""
    import subprocess
    import sys

    code = ('import sys\n'
            f'for module in {COMMANDS!r}:\n'
            '    main = __import__(f"dfdnet.cli.{module}", fromlist=["main"]).main\n'
            '    try:\n        main(["--help"])\n    except SystemExit:\n        pass\n'
            '    print("=== end of", module)\n'
            'print(sorted(m for m in ("torch", "cv2", "dlib") if m in sys.modules))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2]).stdout
    assert out.strip().endswith('[]'), out[-2000:]
    helps = out.split('=== end of')
    assert len(helps) == len(COMMANDS) + 1
    assert all(help_text.count('\nusage: ') + help_text.startswith('usage: ') == 1 for help_text in helps[:-1])
    words = ' '.join(helps[0].split())
    assert '(default auto)' in words and '(default TestData)' in words
    parser_prog = __import__('dfdnet.cli.restore', fromlist=['build_parser']).build_parser('dfdnet-restore').prog
    assert parser_prog == 'dfdnet-restore'


def test_size_limits_skip_and_report_an_image_before_decoding_it(tmp_path, small_model_files, monkeypatch):
    checkpoint, dicts = small_model_files
    inputs = tmp_path / 'in'
    write_image(inputs / 'big.png', np.zeros((100, 200, 3), np.uint8))        # 0.02 MP
    write_image(inputs / 'upscaled.png', np.zeros((40, 50, 3), np.uint8))     # x64: 3200x2560 = 8.2 MP
    write_image(inputs / 'fine.png', np.zeros((20, 30, 3), np.uint8))         # x64: 1920x1280 = 2.5 MP
    results = tmp_path / 'out'
    code = main(['--test_path', str(inputs), '--results_dir', str(results), '--gpu_ids', '-1', '--upscale_factor', '64',
                 '--max_input_megapixels', '0.01', '--max_output_megapixels', '5', '--no_html',
                 '--checkpoint', str(checkpoint), '--dict_dir', str(dicts)])
    summary = json.loads((results / 'summary.json').read_text())
    assert code == 1 and summary['images_done'] == 1
    failed = summary['failed']
    assert '200x100 px' in failed[str(inputs / 'big.png')] and '--max_input_megapixels' in failed[str(inputs / 'big.png')]
    assert '3200x2560 px' in failed[str(inputs / 'upscaled.png')]
    assert '--max_output_megapixels' in failed[str(inputs / 'upscaled.png')]
    assert read_image(results / 'Step4_FinalResults' / 'fine.png').shape == (1280, 1920, 3)
    # the input limit is checked from the header: the pixels are never decoded
    monkeypatch.setattr(cv2, 'imread', lambda *a, **k: pytest.fail('decoded a too-large image'))
    with pytest.raises(ValueError, match='big.png: 200x100 px'):
        read_image(inputs / 'big.png', max_pixels=10_000)


def test_every_restore_option_is_one_declaration_with_its_flag():
    import dataclasses

    from dfdnet.cli.restore import build_parser
    from dfdnet.utils.options import options_from_args

    parser = build_parser('dfdnet-restore')
    fields = dataclasses.fields(RestoreOptions)
    assert all('help' in f.metadata for f in fields), 'each option declares its flag and help in one place'
    assert options_from_args(RestoreOptions, parser.parse_args([])) == RestoreOptions(test_path='TestData',
                                                                                      results_dir='results')
    args = parser.parse_args(['--gpu_ids', '-1', '--no_html', '--template', 't.npy', '--ext', '.PNG',
                              '--precision', 'fp32', '--only_largest_face', '--max_input_megapixels', '0'])
    options = options_from_args(RestoreOptions, args)
    assert (options.device, options.write_html, options.template_path, options.ext, options.precision,
            options.only_largest_face, options.max_input_megapixels) == ('-1', False, Path('t.npy'), 'png', 'fp32',
                                                                         True, 0.0)
    with pytest.raises(ValueError, match='--detector must be one of hog, cnn'):
        options_from_args(RestoreOptions, parser.parse_args(['--detector', 'mtcnn']))
    help_text = parser.format_help()
    assert 'hog, cnn' in help_text and '--gpu_ids' in help_text and '--dft_levels' in help_text


def test_restored_pixels_are_rounded_and_an_unchanged_crop_comes_back_exactly():
    """The released code truncated the network's output to integers, darkening every pixel by half
    a level on average (0.19 dB on clean x2 validation faces, docs/restore.md)."""
    from dfdnet.pipeline.restorer import crops_to_tensor
    from dfdnet.utils.pixels import from_network

    crop = np.arange(256 * 3, dtype=np.int64).reshape(16, 16, 3) % 256
    crop = crop.astype(np.uint8)
    np.testing.assert_array_equal(from_network(crops_to_tensor([crop], 'cpu'))[0], crop)
    levels = torch.tensor([0.4, 0.6, 254.6, 300.0, -3.0]) / 127.5 - 1.0  # 0-255 scale -> [-1, 1]
    out = from_network(levels.view(1, 1, 1, 5).expand(1, 3, 1, 5))[0][0, :, 0]
    assert out.tolist() == [0, 1, 255, 255, 0]
