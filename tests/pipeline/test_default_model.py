"""The model shipped with the package (dfdnet/pretrained/default): its files, its quality on held-out faces, and the
README's first command. Also the exporter that writes such a folder."""
from __future__ import annotations

import json
import logging

import cv2
import numpy as np
import pytest
import torch

from conftest import ROOT, condition_spectral_norm_, write_random_dictionaries
from dfdnet.archs.checkpoint import load_generator, read_checkpoint, save_generator
from dfdnet.archs.dfdnet_arch import DFDNetGenerator, GeneratorConfig
from dfdnet.models.export import export_model
from dfdnet.dictionary.features import file_sha256
from dfdnet.errors import CheckpointError
from dfdnet.pipeline.photo import shipped_model_dir

SHIPPED = shipped_model_dir()
SMALL = GeneratorConfig(image_size=256, width=8, part_sizes=(40, 40, 32, 56))
# What the shipped model must keep on these four held-out faces at its default fidelity (auto: per
# face; the tables over all 19, and the bar of issue 27, are in docs/default_model.md): guards against
# regressions, not the quality claim. x4 (the paper's protocol): the detail of the bar in the
# eyes, nose and mouth, well above the stage-12 model's (fidelity 1), a more natural image (NIQE), and
# PSNR within the bar's 1 dB of bicubic; clean x2: no harm.
MAX_PSNR_LOSS = 1.0
MIN_DETAIL_RATIO, MAX_DETAIL_RATIO = 0.5, 1.5
MIN_NIQE_GAIN = 0.5  # below fidelity 1
MAX_CLEAN_PSNR_LOSS = 0.2  # on these four faces the default measures -0.10 dB, on all 19 -0.08


def test_export_writes_half_precision_files_that_load_back(tmp_path):
    torch.manual_seed(0)
    save_generator(condition_spectral_norm_(DFDNetGenerator(SMALL)), tmp_path / 'g.pth')
    dicts = write_random_dictionaries(tmp_path / 'dicts', num_atoms=5, config=SMALL)
    (dicts / 'dictionary.json').write_text('{"k": 5}')
    record = export_model(tmp_path / 'g.pth', dicts, tmp_path / 'out', 'test model', {'command': 'x'})
    state, config, _ = read_checkpoint(tmp_path / 'out' / 'net_g.pth')
    assert config == SMALL
    assert state['upsample0.conv1.1.weight_orig'].dtype == torch.float16
    assert state['upsample0.conv1.1.weight_u'].dtype == torch.float32  # SN vectors keep full precision
    assert np.load(tmp_path / 'out' / 'dictionaries' / 'mouth_16_center.npy').dtype == np.float16
    assert json.loads((tmp_path / 'out' / 'dictionaries' / 'dictionary.json').read_text()) == {'k': 5}
    assert record['num_atoms'] == 5 and record['provenance'] == {'command': 'x'}
    assert record['stored_weights'] == 'float16' and 0 < record['stored_max_abs_difference_255'] < 2.0
    saved = json.loads((tmp_path / 'out' / 'model.json').read_text())
    assert saved['files']['net_g.pth']['sha256'] == file_sha256(tmp_path / 'out' / 'net_g.pth')
    assert saved['total_bytes'] < (tmp_path / 'g.pth').stat().st_size  # half the weights, half the bytes
    model = load_generator(tmp_path / 'out' / 'net_g.pth', tmp_path / 'out' / 'dictionaries')
    assert next(model.parameters()).dtype == torch.float32  # computes in float32 again


def test_int8_export_stores_per_channel_int8_and_loads_back_close(tmp_path):
    torch.manual_seed(0)
    reference = condition_spectral_norm_(DFDNetGenerator(SMALL))
    save_generator(reference, tmp_path / 'g.pth')
    dicts = write_random_dictionaries(tmp_path / 'dicts', num_atoms=5, config=SMALL)
    record = export_model(tmp_path / 'g.pth', dicts, tmp_path / 'int8', 'test model', weights='int8')
    raw = torch.load(tmp_path / 'int8' / 'net_g.pth', weights_only=False)
    key = 'upsample0.conv1.1.weight_orig'
    assert raw['version'] == 2 and raw['params'][key].dtype == torch.int8
    assert raw['params'][key].abs().amax().item() == 127  # each output channel uses the full range
    assert raw['int8_scales'][key].shape == (raw['params'][key].shape[0], 1, 1, 1)
    assert raw['params']['upsample0.conv1.1.weight_u'].dtype == torch.float32
    assert raw['params']['vgg_extractor.mean'].dtype == torch.float16  # buffers are not quantised
    state, _, _ = read_checkpoint(tmp_path / 'int8' / 'net_g.pth')
    original = reference.state_dict()[key]
    step = original.reshape(original.shape[0], -1).abs().amax(1) / 127
    assert state[key].dtype == torch.float32
    assert ((state[key] - original).abs().reshape(original.shape[0], -1).amax(1) <= step / 2 + 1e-7).all()
    assert record['stored_weights'] == 'int8'
    assert 0.05 < record['stored_max_abs_difference_255'] < 5.0  # float16 is ~0.03 (the test above)
    assert (tmp_path / 'int8' / 'net_g.pth').stat().st_size < 0.3 * (tmp_path / 'g.pth').stat().st_size  # float32
    # a damaged file is refused, not loaded as unscaled integers
    del raw['int8_scales'][key]
    torch.save(raw, tmp_path / 'bad.pth')
    with pytest.raises(CheckpointError, match=f'bad.pth: {key} is stored in int8 without its scale'):
        read_checkpoint(tmp_path / 'bad.pth')
    torch.save({**raw, 'version': 3}, tmp_path / 'new.pth')
    with pytest.raises(CheckpointError, match='format version 3 is newer than this code reads'):
        read_checkpoint(tmp_path / 'new.pth')
    with pytest.raises(ValueError, match="weights must be one of float32, float16, int8, got 'int4'"):
        save_generator(reference, tmp_path / 'x.pth', weights='int4')


@pytest.fixture(scope='module')
def shipped():
    if not (SHIPPED / 'model.json').is_file():
        pytest.fail(f'the shipped model is missing: {SHIPPED}')
    return json.loads((SHIPPED / 'model.json').read_text())


def test_shipped_files_are_complete_small_and_unchanged(shipped):
    total = 0
    for name, info in shipped['files'].items():
        path = SHIPPED / name
        assert path.is_file(), f'{path} listed in model.json is missing'
        assert path.stat().st_size == info['bytes'] and file_sha256(path) == info['sha256'], f'{path} changed'
        total += info['bytes']
    assert total <= 100e6  # the budget for generator + dictionaries
    config = GeneratorConfig(**shipped['config'])
    assert len([n for n in shipped['files'] if n.endswith('_center.npy')]) == 4 * len(config.dft_levels)
    record = json.loads((SHIPPED / 'dictionaries' / 'dictionary.json').read_text())
    assert record['encoder']['source'] == 'checkpoint' and not record['encoder']['random_encoder']


@pytest.fixture(scope='module')
def held_out_x4(shared_data, tmp_path_factory):
    """Four held-out FFHQ faces degraded x4 with the paper's protocol and clean x2 (seed 0), as in the docs' table."""
    from dfdnet.data.testset import MakeTestsetOptions, build_testset

    out = tmp_path_factory.mktemp('testset')
    build_testset(MakeTestsetOptions(sources=[shared_data / 'faces_hq' / 'ffhq_gpen'], out_dir=out,
                                     settings=('x4', 'clean_x2'),
                                     max_images=4, landmarks=True))
    return out


def _restore_aligned(lq_dir, results, *extra):
    from dfdnet.cli.restore import main

    code = main(['--aligned', '--test_path', str(lq_dir), '--results_dir', str(results), '--gpu_ids', '-1',
                 '--no_html', '--checkpoint', str(SHIPPED / 'net_g.pth'), '--dict_dir', str(SHIPPED / 'dictionaries'),
                 *extra])
    assert code == 0
    return results / 'Step3_RestoreCropFace'


def test_shipped_model_restores_detail_on_held_out_faces(shipped, held_out_x4, shared_data, tmp_path):
    from dfdnet.metrics.evaluate import EvaluationOptions, evaluate, summarise

    full = _restore_aligned(held_out_x4 / 'x4' / 'lq', tmp_path / 'full')
    psnr_model = _restore_aligned(held_out_x4 / 'x4' / 'lq', tmp_path / 'fidelity1', '--fidelity', '1')
    no_dft = _restore_aligned(held_out_x4 / 'x4' / 'lq', tmp_path / 'no_dft', '--dft_levels')
    result = evaluate(EvaluationOptions(restored=[('dfdnet', full), ('fidelity1', psnr_model), ('0dft', no_dft)],
                                        gt_dir=held_out_x4 / 'gt', lq_dir=held_out_x4 / 'x4' / 'lq_small',
                                        baseline_bicubic=True, face_metrics=True, lpips='off', resize_restored=True,
                                        niqe_params=shared_data / 'metrics' / 'niqe_pris_params.npz',
                                        gt_landmarks_dir=held_out_x4 / 'landmarks'))
    table = {row['method']: row for row in summarise(result.rows)}
    assert table['dfdnet']['images'] == table['bicubic']['images'] == 4
    assert table['dfdnet']['psnr'] > table['bicubic']['psnr'] - MAX_PSNR_LOSS, table
    assert MIN_DETAIL_RATIO < table['dfdnet']['detail_ratio'] < MAX_DETAIL_RATIO, table
    assert table['dfdnet']['detail_ratio'] > 1.5 * table['fidelity1']['detail_ratio'], table
    assert table['dfdnet']['niqe'] < min(table['bicubic']['niqe'], table['fidelity1']['niqe'] - MIN_NIQE_GAIN), table
    assert table['dfdnet']['psnr'] != table['0dft']['psnr']  # the dictionaries are really used


def test_shipped_model_does_no_harm_to_clean_faces(shipped, held_out_x4, tmp_path):
    from dfdnet.metrics.evaluate import EvaluationOptions, evaluate, summarise

    restored = _restore_aligned(held_out_x4 / 'clean_x2' / 'lq', tmp_path / 'clean')
    assert cv2.imread(str(next(restored.iterdir()))).shape[:2] == (512, 512)  # 512 in, 512 out
    result = evaluate(EvaluationOptions(restored=[('dfdnet', restored)], gt_dir=held_out_x4 / 'gt',
                                        lq_dir=held_out_x4 / 'clean_x2' / 'lq_small', baseline_bicubic=True,
                                        face_metrics=False, lpips='off'))
    table = {row['method']: row for row in summarise(result.rows)}
    assert table['dfdnet']['images'] == 4
    assert table['dfdnet']['psnr'] > table['bicubic']['psnr'] - MAX_CLEAN_PSNR_LOSS, table


def test_shipped_fidelity_ends(shipped, held_out_x4):
    """Fidelity 1 is the stage-12 generator exactly; the default is per face (auto): a clean x2 face
    gets fidelity 1 and an x4 face a value strictly between the ends, whose output lies between theirs."""
    from dfdnet.archs.fidelity import AutoFidelity, restore_batch
    from dfdnet.face.components import component_boxes
    from dfdnet.face.landmarks import read_landmarks
    from dfdnet.pipeline.photo import resolve_fidelity

    sharp, rule = resolve_fidelity(SHIPPED / 'net_g.pth')
    assert sharp == SHIPPED / 'net_g_sharp.pth' and shipped['fidelity']['default'] == 'auto'
    assert rule == AutoFidelity(**shipped['fidelity']['auto'])

    def load(name):
        face = sorted((held_out_x4 / name / 'lq').iterdir())[0]
        image = torch.from_numpy(cv2.imread(str(face))[:, :, ::-1].copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
        landmarks = read_landmarks(held_out_x4 / 'landmarks' / f'{face.name}.txt')  # the GT's, 512 px
        return image, torch.from_numpy(component_boxes(landmarks, 512))[None]

    (image, boxes), (clean, clean_boxes) = load('x4'), load('clean_x2')
    dicts = SHIPPED / 'dictionaries'
    auto = load_generator(SHIPPED / 'net_g.pth', dicts, sharp_checkpoint=sharp, fidelity=rule)
    with torch.no_grad():
        plain = load_generator(SHIPPED / 'net_g.pth', dicts)
        _, (clean_fidelity,) = restore_batch(auto, clean, clean_boxes)
        output, (fidelity,) = restore_batch(auto, image, boxes)
        outputs = {w: load_generator(SHIPPED / 'net_g.pth', dicts, sharp_checkpoint=sharp, fidelity=w)(image, boxes)
                   for w in (0.0, 1.0)}
        assert torch.equal(outputs[1.0], plain(image, boxes))
    assert clean_fidelity == 1.0 and 0 < fidelity < 1
    assert 0 < (output - outputs[1.0]).abs().mean() < (outputs[0.0] - outputs[1.0]).abs().mean()


def test_readme_first_command_runs_the_shipped_model(shipped, tmp_path, caplog):
    """`test_FaceDict.py --test_path TestData ...` with no weights given: the shipped model, every face."""
    from dfdnet.cli.restore import main
    from dfdnet.pipeline.options import RELEASED_CHECKPOINT

    if (ROOT / RELEASED_CHECKPOINT).exists():
        pytest.skip('the released weights are in place: they would run instead')
    caplog.set_level(logging.INFO)
    results = tmp_path / 'results'
    code = main(['--test_path', str(ROOT / 'TestData' / 'astronaut_pair.jpg'), '--results_dir', str(results),
                 '--upscale_factor', '2', '--gpu_ids', '-1'])
    assert code == 0
    assert "this project's default model" in caplog.text and 'DFDNet512, 256-px core, width 16' in caplog.text
    summary = json.loads((results / 'summary.json').read_text())
    assert summary['faces_restored'] == 2
    source = cv2.imread(str(ROOT / 'TestData' / 'astronaut_pair.jpg'))
    final = cv2.imread(str(next((results / 'Step4_FinalResults').iterdir())))
    assert final.shape[:2] == (source.shape[0] * 2, source.shape[1] * 2)


def test_export_records_no_machine_paths(tmp_path):
    import os

    from dfdnet.models.export import relative_paths

    record = relative_paths({'commands': ['20261201 /usr/local/bin/python3.11 train.py -opt options/a.yml'],
                             'encoder': str(tmp_path / 'experiments' / 'e.pth'), 'data': '/srv/data/x.png',
                             'k': 'K=64/256', 'url': 'https://example.org/a', 'n': 3}, root=tmp_path)
    assert record == {'commands': ['20261201 python train.py -opt options/a.yml'], 'encoder': 'experiments/e.pth',
                      'data': os.path.relpath('/srv/data/x.png', tmp_path), 'k': 'K=64/256',
                      'url': 'https://example.org/a', 'n': 3}


def test_readme_python_example_runs_as_written(shipped, tmp_path, monkeypatch):
    """The README's Python blocks, run as they stand (from a folder that has the project's TestData)."""
    import re

    from dfdnet.pipeline.options import RELEASED_CHECKPOINT
    from dfdnet.utils.pixels import from_network

    if (ROOT / RELEASED_CHECKPOINT).exists():
        pytest.skip('the released weights are in place: they would run instead')
    readme = (ROOT / 'README.md').read_text()
    section = readme[readme.index('## Python API'):]
    blocks = re.findall(r'```python\n(.*?)```', section[:section.index('\n## ', 5)], flags=re.S)
    assert len(blocks) == 2
    (tmp_path / 'TestData').symlink_to(ROOT / 'TestData')
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(blocks[0] + blocks[1], 'README.md', 'exec'), namespace)
    source = cv2.imread(str(ROOT / 'TestData' / 'astronaut_pair.jpg'))
    written = cv2.imread(str(tmp_path / 'astronaut_pair_restored.png'))
    assert written.shape == (source.shape[0] * 2, source.shape[1] * 2, 3)
    assert len(namespace['result'].restored_faces) == 2
    restored = namespace['restored']  # the generator call of the second block equals the photo's face
    face = from_network(restored)[0]
    assert np.abs(face.astype(int) - namespace['result'].restored_faces[0]).max() <= 1
