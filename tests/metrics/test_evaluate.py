"""dfdnet/cli/evaluate.py on tiny folders (missing counterparts, bad files, baseline, no-GT mode) and
make_testset determinism."""
from __future__ import annotations

import csv
import json
import math
import re
import shutil

import cv2
import numpy as np
import pytest

from dfdnet.cli.evaluate import main as evaluate_main
from dfdnet.data.testset import MakeTestsetOptions, build_testset


def _read_csv(path):
    with open(path, newline='') as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope='module')
def pair_folders(shared_data, tmp_path_factory):
    """gt/{a,b,c,d}.png (256 px faces), lq/{a,b,c,d} (64 px), restored/{a (identical), b (degraded),
    d (wrong size), extra (no GT), broken (unreadable)}; gt/broken is unreadable too."""
    root = tmp_path_factory.mktemp('pairs')
    source = shared_data / 'faces_hq' / 'ffhq_gpen'
    for sub in ('gt', 'restored', 'lq'):
        (root / sub).mkdir()
    for stem, name in (('a', '00000.png'), ('b', '00003.png'), ('c', '00004.png'), ('d', '00005.png')):
        gt = cv2.resize(cv2.imread(str(source / name)), (256, 256), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(root / 'gt' / f'{stem}.png'), gt)
        cv2.imwrite(str(root / 'lq' / f'{stem}.png'), cv2.resize(gt, (64, 64), interpolation=cv2.INTER_AREA))
    shutil.copy(root / 'gt' / 'a.png', root / 'restored' / 'a.png')
    blurred = cv2.GaussianBlur(cv2.imread(str(root / 'gt' / 'b.png')), (0, 0), 2.0)
    cv2.imwrite(str(root / 'restored' / 'b.jpg'), blurred, [cv2.IMWRITE_JPEG_QUALITY, 95])  # matched by stem
    cv2.imwrite(str(root / 'restored' / 'extra.png'), blurred)
    cv2.imwrite(str(root / 'restored' / 'd.png'), cv2.imread(str(root / 'lq' / 'd.png')))
    (root / 'restored' / 'broken.png').write_bytes(b'not an image')
    (root / 'gt' / 'broken.png').write_bytes(b'not an image either')
    return root


def test_evaluate_pairs_with_missing_and_broken_files(pair_folders, shared_data, capsys):
    root = pair_folders
    csv_path = root / 'out' / 'rows.csv'
    before = {p: p.read_bytes() for p in (root / 'restored').iterdir()}
    code = evaluate_main(['--restored', f'mine={root / "restored"}', '--gt', str(root / 'gt'),
                          '--lq', str(root / 'lq'), '--baseline', 'bicubic', '--csv', str(csv_path),
                          '--niqe-params', str(shared_data / 'metrics' / 'niqe_pris_params.npz')])
    assert code == 0
    assert {p: p.read_bytes() for p in (root / 'restored').iterdir()} == before, 'inputs must not change'
    rows = {(r['method'], r['file']): r for r in _read_csv(csv_path)}
    mine = {f: r for (m, f), r in rows.items() if m == 'mine'}
    assert set(mine) == {'a.png', 'b.jpg', 'c.png', 'd.png', 'extra.png', 'broken.png'}
    assert mine['d.png']['status'] == 'error: size 64x64 differs from the GT 256x256'
    assert mine['a.png']['status'] == 'ok' and math.isinf(float(mine['a.png']['psnr']))
    assert float(mine['a.png']['ssim']) == pytest.approx(1.0) and float(mine['a.png']['identity']) == pytest.approx(1.0)
    assert float(mine['a.png']['landmark_nme']) == 0.0
    b = mine['b.jpg']
    assert b['status'] == 'ok'
    assert 20 < float(b['psnr']) < 40 and 0.5 < float(b['ssim']) < 1.0 and float(b['identity']) < 1.0
    assert float(b['psnr_y']) != float(b['psnr']) and math.isfinite(float(b['niqe']))
    # eyes, nose and mouth (the GT's component boxes) only: blur costs more there than on the whole face
    assert math.isinf(float(mine['a.png']['psnr_components']))
    assert 15 < float(b['psnr_components']) < float(b['psnr'])
    # fine detail there against the GT's: 1 for the GT itself, a quarter left after a sigma-2 blur (256 px)
    assert float(mine['a.png']['detail_ratio']) == pytest.approx(1.0) and float(b['detail_ratio']) < 0.4
    assert mine['c.png']['status'] == 'missing restored' and mine['c.png']['psnr'] == ''
    assert mine['extra.png']['status'] == 'missing gt' and mine['extra.png']['psnr'] == ''
    assert math.isfinite(float(mine['extra.png']['niqe']))  # no-reference metrics still computed
    assert mine['broken.png']['status'].startswith('error: ') and 'broken.png: cannot decode' in mine['broken.png']['status']
    bicubic = {f: r for (m, f), r in rows.items() if m == 'bicubic'}
    assert {f for f, r in bicubic.items() if r['status'] == 'ok'} == {'a.png', 'b.png', 'c.png', 'd.png'}
    assert float(bicubic['a.png']['psnr']) < 35  # a real upsampling, not the GT
    out = capsys.readouterr().out
    assert '| method | images | missing | errors | psnr ↑' in out
    assert '| bicubic | 4 | 1 | 0 |' in out and '| mine | 2 | 2 | 2 |' in out
    assert 'mine: no image for GT c.png' in out and 'LPIPS' in out


def test_evaluate_without_gt_gives_no_reference_metrics(pair_folders, shared_data, capsys, tmp_path):
    csv_path = tmp_path / 'noref.csv'
    code = evaluate_main(['--restored', str(pair_folders / 'gt'), '--csv', str(csv_path),
                          '--niqe-params', str(shared_data / 'metrics' / 'niqe_pris_params.npz')])
    assert code == 0
    rows = {r['file']: r for r in _read_csv(csv_path)}
    assert rows['a.png']['psnr'] == '' and math.isfinite(float(rows['a.png']['niqe']))
    assert int(rows['a.png']['faces']) >= 1
    assert rows['broken.png']['status'].startswith('error')
    out = capsys.readouterr().out
    assert 'niqe ↓' in out and 'psnr' not in out.split('\n')[0]
    # 64-px images are too small for NIQE: noted, the row still counts
    assert evaluate_main(['--restored', str(pair_folders / 'lq'), '--csv', str(csv_path), '--no-face-metrics',
                          '--niqe-params', str(shared_data / 'metrics' / 'niqe_pris_params.npz')]) == 0
    rows = _read_csv(csv_path)
    assert [r['status'] for r in rows] == ['ok'] * 4 and all(r['niqe'] == '' for r in rows)
    assert 'lq: a.png: no NIQE (NIQE needs an image of at least 96×96' in capsys.readouterr().out


def test_evaluate_reports_bad_arguments(tmp_path, capsys):
    assert evaluate_main(['--restored', str(tmp_path / 'nowhere')]) == 2
    assert 'image folder not found' in capsys.readouterr().err
    assert evaluate_main(['--restored', str(tmp_path), '--baseline', 'bicubic']) == 2
    assert 'needs the LQ folder' in capsys.readouterr().err


def _tree(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob('*')) if p.is_file()}


def test_make_testset_is_deterministic_and_skips_duplicates(shared_data, tmp_path):
    from dfdnet.metrics.face_dlib import DlibFaceModels

    src_a, src_b = tmp_path / 'src_a', tmp_path / 'src_b'
    src_a.mkdir()
    src_b.mkdir()
    for name in ('00000.png', '00003.png'):
        shutil.copy(shared_data / 'faces_hq' / 'ffhq_gpen' / name, src_a / name)
    shutil.copy(src_a / '00000.png', src_b / 'dup.png')          # same pixels: skipped
    (src_b / 'bad.png').write_bytes(b'broken')                    # unreadable: skipped, reported
    models = DlibFaceModels()
    kernels = shared_data / 'degradation' / 'motion_kernels'
    runs = []
    for out, seed in (('run1', 7), ('run2', 7), ('run3', 8)):
        options = MakeTestsetOptions(sources=[src_a, src_b], out_dir=tmp_path / out, seed=seed, motion_kernels=kernels)
        report = build_testset(options, landmarker68=models.landmarker68)
        assert report.names == ['00000', '00003']
        assert set(report.skipped) == {str(src_b / 'bad.png'), str(src_b / 'dup.png')}
        runs.append(_tree(tmp_path / out))
    assert runs[0] == runs[1], 'same inputs and seed must give identical files'
    assert runs[0]['gt/00000.png'] == runs[2]['gt/00000.png']
    assert runs[0]['x4/lq/00000.png'] != runs[2]['x4/lq/00000.png']

    out = tmp_path / 'run1'
    small4 = cv2.imread(str(out / 'x4' / 'lq_small' / '00003.png'))
    small8 = cv2.imread(str(out / 'x8' / 'lq_small' / '00003.png'))
    assert small4.shape == (128, 128, 3) and small8.shape == (64, 64, 3)
    assert cv2.imread(str(out / 'eq11' / 'lq' / '00003.png')).shape == (512, 512, 3)
    landmarks = np.loadtxt(out / 'landmarks' / '00000.png.txt')
    assert landmarks.shape == (68, 2) and 100 < landmarks[:, 0].mean() < 412
    params = json.loads((out / 'eq11' / 'params.json').read_text())
    for p in params.values():  # the stages that ran: blur and JPEG always, noise and resizing unless 0 / x1
        assert 1.0 < p.get('scale', 2.0) <= 8.0 and 0 < p.get('noise_sigma', 1) <= 15 and 40 <= p['jpeg_quality'] <= 80
        assert ('motion_kernel' in p) != ('gaussian_sigma' in p)
    x4 = json.loads((out / 'x4' / 'params.json').read_text())
    assert all(p['scale'] == 4.0 and 'jpeg_quality' not in p and 'motion_kernel' not in p
               and 1 <= p['gaussian_sigma'] <= 5 for p in x4.values())
    manifest = json.loads((out / 'manifest.json').read_text())
    assert manifest['seed'] == 7 and manifest['images'] == ['00000', '00003']

    with pytest.raises(FileExistsError, match='already holds'):
        build_testset(MakeTestsetOptions(sources=[src_a], out_dir=out, seed=7, motion_kernels=kernels),
                      landmarker68=models.landmarker68)
    with pytest.raises(ValueError, match='must not be'):
        build_testset(MakeTestsetOptions(sources=[src_a], out_dir=src_a / 'out', landmarks=False))


def test_face_index_suffix_matches_gt_stem():
    from dfdnet.metrics.evaluate import match_face_index_suffix

    gt = {'a': 'gt/a.png', 'b': 'gt/b.png', 'c_01': 'gt/c_01.png'}
    restored = {'a_00': 'r/a_00.png', 'b': 'r/b.png', 'b_00': 'r/b_00.png', 'c_01': 'r/c_01.png', 'd_00': 'r/d_00.png'}
    assert match_face_index_suffix(restored, gt) == {
        'a': 'r/a_00.png', 'b': 'r/b.png', 'b_00': 'r/b_00.png', 'c_01': 'r/c_01.png', 'd_00': 'r/d_00.png'}


def test_paired_comparison_pools_settings_from_csv(tmp_path, capsys):
    from dfdnet.metrics.evaluate import paired_comparison, read_csv_rows, write_csv

    rng = np.random.default_rng(0)
    paths = []
    for setting in ('x4', 'x8'):  # the same file names in two settings: pairs stay within a setting
        rows = []
        for i in range(8):
            base, gain = rng.uniform(20, 30), 0.1 + 0.01 * i
            rows += [{'method': 'A', 'file': f'{i}.png', 'status': 'ok', 'psnr': base, 'identity_dist': 0.3},
                     {'method': 'B', 'file': f'{i}.png', 'status': 'ok', 'psnr': base + gain,
                      'identity_dist': 0.3 + (0.01 if i == 0 else -0.01)}]
        rows.append({'method': 'B', 'file': 'only_b.png', 'status': 'ok', 'psnr': 99.0})  # unpaired: ignored
        rows.append({'method': 'A', 'file': '8.png', 'status': 'error: broken', 'psnr': 50.0})  # not ok: no pair
        rows.append({'method': 'B', 'file': '8.png', 'status': 'ok', 'psnr': 10.0})
        paths.append(tmp_path / f'{setting}.csv')
        write_csv(rows, paths[-1])
    pooled = read_csv_rows(paths)
    psnr, components, detail, identity = paired_comparison(pooled, 'A', 'B')
    assert psnr['pairs'] == 16 and psnr['b_better'] == 16 and psnr['b_worse'] == 0
    assert psnr['mean_diff'] == pytest.approx(0.1 + 0.01 * 3.5) and psnr['p_value'] < 0.001
    assert components == {'column': 'psnr_components', 'pairs': 0, 'mean_diff': None, 'median_ratio': None,
                          'b_better': 0, 'b_worse': 0, 'p_value': None}
    assert psnr['median_ratio'] == pytest.approx(np.median([r['psnr'] for r in rows if r['method'] == 'B'][:8]) /
                                                 np.median([r['psnr'] for r in rows if r['method'] == 'A'][:8]),
                                                 rel=0.01)
    assert (identity['b_better'], identity['b_worse']) == (14, 2)  # lower distance is better
    assert detail['column'] == 'detail_ratio' and detail['pairs'] == 0
    assert evaluate_main(['--from-csv', *map(str, paths), '--paired', 'A', 'B']) == 0
    out = capsys.readouterr().out
    assert '| B vs A | pairs | mean difference | median ratio |' in out
    assert re.search(r'\| psnr ↑ \| 16 \| \+0\.1350 \| 1\.00\d \| 16 \| 0 \|', out)
