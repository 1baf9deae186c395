"""Small command-line tools of the default-model recipe: aligning wild faces, the figure grid,
the validation-set scorer."""
from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from dfdnet.cli.align_faces import main as align_main
from dfdnet.cli.make_figure import main as figure_main
from dfdnet.pipeline.figures import compare_rows, face_pairs, make_grid


def test_align_faces_writes_aligned_crops_and_reports_bad_files(shared_data, tmp_path, caplog):
    photos = tmp_path / 'photos'
    photos.mkdir()
    shutil.copy(shared_data / 'faces_wild_hq' / 'img11.jpg', photos / 'img11.jpg')
    (photos / 'broken.jpg').write_bytes(b'not an image')
    out = tmp_path / 'aligned'
    assert align_main(['--input', str(photos), '--output', str(out)]) == 0
    faces = sorted(out.glob('*.png'))
    assert [f.name for f in faces] == ['img11_00.png']
    face = cv2.imread(str(faces[0]))
    assert face.shape == (512, 512, 3) and face.std() > 20
    assert 'broken.jpg: cannot decode' in caplog.text
    # a minimum face size above every face: nothing written, no error
    assert align_main(['--input', str(photos), '--output', str(tmp_path / 'none'), '--min_face_size', '5000']) == 0
    assert not list((tmp_path / 'none').glob('*.png'))
    with pytest.raises(SystemExit):
        align_main(['--input', str(photos), '--output', str(photos)])


def test_face_pairs_and_grid_layout(tmp_path):
    whole, aligned = tmp_path / 'whole', tmp_path / 'aligned'
    for folder, step in ((whole, 'Step1_CropImg'), (aligned, 'Step0_Input')):
        (folder / step).mkdir(parents=True)
        (folder / 'Step3_RestoreCropFace').mkdir()
    for name in ('a_00.png', 'a_01.png'):
        cv2.imwrite(str(whole / 'Step1_CropImg' / name), np.full((256, 256, 3), 10, np.uint8))
        cv2.imwrite(str(whole / 'Step3_RestoreCropFace' / name), np.full((256, 256, 3), 200, np.uint8))
    cv2.imwrite(str(aligned / 'Step0_Input' / 'f.jpg'), np.full((512, 512, 3), 10, np.uint8))
    cv2.imwrite(str(aligned / 'Step3_RestoreCropFace' / 'f.png'), np.full((256, 256, 3), 200, np.uint8))
    pairs = face_pairs(whole) + face_pairs(aligned)
    assert [(a.parent.name, b.name) for a, b in pairs] == [('Step1_CropImg', 'a_00.png'), ('Step1_CropImg', 'a_01.png'),
                                                         ('Step0_Input', 'f.png')]
    grid = make_grid(pairs, tile=32, pairs_per_row=2, gap=4)
    assert grid.shape == (24 + 2 * (32 + 4) + 4, 2 * (2 * 32 + 3 * 4), 3)
    assert grid[24, 4 + 5, 0] == 10 and grid[24, 4 + 32 + 4 + 5, 0] == 200  # input left, restored right
    with pytest.raises(ValueError, match='no face pairs'):
        make_grid([])
    # the same faces from another run (e.g. another --fidelity) as a third column
    other = tmp_path / 'other'
    (other / 'Step3_RestoreCropFace').mkdir(parents=True)
    for name in ('a_00.png', 'a_01.png'):
        cv2.imwrite(str(other / 'Step3_RestoreCropFace' / name), np.full((256, 256, 3), 120, np.uint8))
    rows = compare_rows(face_pairs(whole), [('fidelity 1', other)])
    grid = make_grid(rows, tile=32, pairs_per_row=1, gap=4, labels=('input', 'default', 'fidelity 1'))
    assert grid.shape == (24 + 2 * (32 + 4) + 4, 3 * 32 + 4 * 4, 3)
    assert [grid[24, 4 + k * 36 + 5, 0] for k in range(3)] == [10, 200, 120]
    with pytest.raises(ValueError, match='f.png is missing from'):
        compare_rows(face_pairs(aligned), [('fidelity 1', other)])
    out = tmp_path / 'fig.png'
    assert figure_main(['--results', str(whole), '--compare', f'fidelity 1={other}', '--label', 'default',
                        '--tile', '32', '--per_row', '1', '--out', str(out)]) == 0
    assert cv2.imread(str(out)).shape == (24 + 2 * 38 + 6, 3 * 38 + 6, 3)  # the CLI's gap is 6


def test_figure_folders_are_arguments_and_a_bad_output_is_an_error(tmp_path, capsys):
    run, other = tmp_path / 'run', tmp_path / 'other'
    for folder, step in ((run, 'crops'), (run, 'restored'), (other, 'restored'), (run, 'inputs')):
        (folder / step).mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(run / 'crops' / 'a_00.png'), np.full((64, 64, 3), 10, np.uint8))
    cv2.imwrite(str(run / 'inputs' / 'b.jpg'), np.full((64, 64, 3), 10, np.uint8))
    for name in ('a_00.png', 'b.png', 'c.png'):  # c has neither a crop nor an input: left out
        cv2.imwrite(str(run / 'restored' / name), np.full((64, 64, 3), 200, np.uint8))
    pairs = face_pairs(run, restored_step='restored', crop_step='crops', input_step='inputs')
    assert [(a.relative_to(run).as_posix(), b.name) for a, b in pairs] == [('crops/a_00.png', 'a_00.png'),
                                                                         ('inputs/b.jpg', 'b.png')]
    assert face_pairs(run) == []  # not the default step folders
    with pytest.raises(ValueError, match=r'a_00.png is missing from .*other/restored/a_00.png'):
        compare_rows(pairs, [('other', other)], restored_step='restored')
    whole = tmp_path / 'whole'
    for step in ('Step1_CropImg', 'Step3_RestoreCropFace'):
        (whole / step).mkdir(parents=True)
        cv2.imwrite(str(whole / step / 'a_00.png'), np.full((64, 64, 3), 10, np.uint8))
    blocked = tmp_path / 'a_file'
    blocked.write_text('')
    assert figure_main(['--results', str(whole), '--out', str(blocked / 'fig.png')]) == 2
    assert 'error:' in capsys.readouterr().err and not (blocked / 'fig.png').exists()


def test_aligned_landmarks_scale_with_the_face(shared_data):
    """A 512-px aligned face with its 512-px landmark file, prepared for a 256-px model."""
    from dfdnet.face.landmarks import read_landmarks
    from dfdnet.pipeline.faces import FacePreparer

    face_file = sorted((shared_data / 'faces_lq' / 'dfdnet_realvgg').iterdir())[0]
    points = read_landmarks(shared_data / 'faces_lq' / 'dfdnet_realvgg_landmarks' / f'{face_file.name}.txt')
    rgb = cv2.cvtColor(cv2.imread(str(face_file)), cv2.COLOR_BGR2RGB)
    assert rgb.shape == (512, 512, 3)
    face = FacePreparer(256, landmarks68=None).aligned_face(rgb, points)
    assert face.crop.shape == (256, 256, 3)
    assert np.allclose(face.landmarks68, points / 2)
