"""Backends (--backend): the generator converted once for OpenVINO / onnxruntime, cached by its weights,
called like the torch model; 'auto' from the recorded timings; clear errors for what cannot run."""
import json
import logging
import os

import pytest
import torch

from conftest import condition_spectral_norm_, real_aligned_faces, write_random_dictionaries
from dfdnet.archs import runtime
from dfdnet.archs.checkpoint import load_generator, save_generator
from dfdnet.archs.dfdnet_arch import DFDNetGenerator, GeneratorConfig
from dfdnet.archs.onnx_export import compare, example_inputs
from dfdnet.pipeline.options import RestoreOptions

pytest.importorskip('onnx')
CONFIG = GeneratorConfig(width=8, image_size=128, dft_levels=(2, 3))


@pytest.fixture(scope='module')
def weights(tmp_path_factory):
    folder = tmp_path_factory.mktemp('runtime')
    torch.manual_seed(0)
    model = condition_spectral_norm_(DFDNetGenerator(CONFIG))
    save_generator(model, folder / 'g.pth')
    return folder / 'g.pth', write_random_dictionaries(folder / 'dicts', num_atoms=4, config=CONFIG)


@pytest.fixture(scope='module')
def converted(weights, tmp_path_factory):
    """The weights converted for OpenVINO into a fresh cache folder: (cache folder, generator)."""
    pytest.importorskip('openvino')
    checkpoint, dicts = weights
    cache = tmp_path_factory.mktemp('cache')
    return cache, load_generator(checkpoint, dicts, backend='openvino', cache_dir=cache)


def test_backend_matches_torch_and_is_cached(weights, converted, caplog):
    checkpoint, dicts = weights
    cache, g = converted
    images, boxes = example_inputs(CONFIG.image_size, batch=3, seed=4)
    with torch.no_grad():
        reference = load_generator(checkpoint, dicts)(images, boxes)
    output = g(images, boxes)
    assert isinstance(output, torch.Tensor) and output.shape == reference.shape and output.dtype == torch.float32
    assert compare(reference, output.numpy())['max_255'] < 0.5
    assert g.backend == 'openvino' and g.config == CONFIG and g.checkpoint_format == 'dfdnet-generator'
    (folder,) = [p for p in cache.iterdir() if not p.name.startswith('.')]
    manifest = json.loads((folder / 'manifest.json').read_text())
    assert set(manifest['seconds_per_face']['fp32']) == {'torch', 'openvino'}
    assert manifest['float32_difference_255']['max_255'] < 0.5
    with caplog.at_level(logging.INFO, logger='dfdnet.archs.runtime'):
        again = load_generator(checkpoint, dicts, backend='openvino', cache_dir=cache)
    assert any('from the cache' in r.message for r in caplog.records)
    assert not any('converted' in r.message for r in caplog.records)
    assert torch.equal(again(images, boxes), output)


def test_changed_weights_or_damaged_cache_convert_again(weights, converted, caplog, monkeypatch, tmp_path):
    checkpoint, dicts = weights
    cache, _ = converted
    (folder,) = [p for p in cache.iterdir() if not p.name.startswith('.')]
    damaged = tmp_path / folder.name
    damaged.mkdir()
    for name in ('manifest.json', 'model.onnx', 'model.xml'):  # model.bin lost: converted again, with a warning
        (damaged / name).write_bytes((folder / name).read_bytes())
    calls = []
    monkeypatch.setattr(runtime, '_convert', lambda backend, where, model, precision: calls.append(where) or
                        json.loads((folder / 'manifest.json').read_text()))
    monkeypatch.setattr(runtime, '_compile', lambda *args: None)
    with caplog.at_level(logging.INFO, logger='dfdnet.archs.runtime'):
        load_generator(checkpoint, dicts, backend='openvino', cache_dir=tmp_path)
    assert calls == [damaged] and any('damaged' in r.message for r in caplog.records)
    key = runtime.model_key(checkpoint, dicts, 'openvino')
    assert key == folder.name
    assert runtime.model_key(checkpoint, dicts, 'openvino', fidelity=0.5) != key
    assert runtime.model_key(checkpoint, dicts, 'onnxruntime') != key
    stat = checkpoint.stat()
    os.utime(checkpoint, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a changed file: a new key
    try:
        assert runtime.model_key(checkpoint, dicts, 'openvino') != key
    finally:
        os.utime(checkpoint, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_auto_picks_the_fastest_recorded_backend(weights, tmp_path, monkeypatch):
    checkpoint, dicts = weights
    assert runtime.choose_backend(checkpoint, dicts, 'cpu', 'fp32', tmp_path / 'none') == 'torch'
    folder = tmp_path / runtime.model_key(checkpoint, dicts, 'openvino')
    folder.mkdir()
    for name in ('model.onnx', 'model.xml', 'model.bin'):
        (folder / name).write_bytes(b'')
    record = {'backend': 'openvino', 'seconds_per_face': {'fp32': {'torch': 1.0, 'openvino': 0.5}}}
    (folder / 'manifest.json').write_text(json.dumps(record))
    assert runtime.choose_backend(checkpoint, dicts, 'cpu', 'fp32', tmp_path) == 'openvino'
    assert runtime.choose_backend(checkpoint, dicts, 'cpu', 'bf16', tmp_path) == 'torch'  # not measured
    assert runtime.choose_backend(checkpoint, dicts, 'cpu', 'fp32', tmp_path, fidelity='auto') == 'torch'
    record['seconds_per_face']['fp32']['openvino'] = 2.0
    (folder / 'manifest.json').write_text(json.dumps(record))
    assert runtime.choose_backend(checkpoint, dicts, 'cpu', 'fp32', tmp_path) == 'torch'


def test_what_cannot_run_is_refused_with_a_message(weights, tmp_path, monkeypatch):
    checkpoint, dicts = weights
    with pytest.raises(ValueError, match='onnxruntime runs float32 only'):
        load_generator(checkpoint, dicts, backend='onnxruntime', precision='bf16', cache_dir=tmp_path)
    with pytest.raises(ValueError, match='one fidelity for every face'):
        runtime.load_runtime(checkpoint, dicts, 'openvino', fidelity=runtime_auto())
    with pytest.raises(ValueError, match='backend must be one of'):
        load_generator(checkpoint, dicts, backend='tensorrt')

    def missing(name):
        raise runtime.importlib.metadata.PackageNotFoundError(name)
    monkeypatch.setattr(runtime.importlib.metadata, 'version', missing)
    with pytest.raises(ImportError, match="needs the Python package 'openvino'.*pip install openvino"):
        load_generator(checkpoint, dicts, backend='openvino', cache_dir=tmp_path)
    with pytest.raises(ValueError, match='backend'):
        RestoreOptions(backend='tensorrt')
    assert os.environ.get('DFDNET_CACHE') is None or runtime.runtime_cache_dir().name == 'runtime'


def runtime_auto():
    from dfdnet.archs.fidelity import AutoFidelity
    return AutoFidelity()


def test_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv('DFDNET_CACHE', str(tmp_path / 'c'))
    assert runtime.runtime_cache_dir() == tmp_path / 'c' / 'runtime'
    monkeypatch.delenv('DFDNET_CACHE')
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'x'))
    assert runtime.runtime_cache_dir() == tmp_path / 'x' / 'dfdnet' / 'runtime'
    assert runtime.runtime_cache_dir(tmp_path / 'o') == tmp_path / 'o'


def test_backends_on_real_faces_within_the_precision_bounds(weights, converted, shared_data):
    """Real aligned faces with their own boxes in one batch: OpenVINO fp32 and onnxruntime within
    0.5/255 of torch fp32; OpenVINO and torch in bf16 within 3/255 (max) and 0.5/255 (mean)."""
    checkpoint, dicts = weights
    cache, openvino_fp32 = converted
    images, boxes = real_aligned_faces(shared_data, 3, CONFIG.image_size)
    boxes = torch.from_numpy(boxes).float()
    assert not torch.equal(boxes[0], boxes[1])
    with torch.no_grad():
        reference = load_generator(checkpoint, dicts)(images, boxes)
        torch_bf16 = load_generator(checkpoint, dicts, precision='bf16')(images, boxes).float()
    ort = pytest.importorskip('onnxruntime')
    session = ort.InferenceSession(str(openvino_fp32.folder / 'model.onnx'), providers=['CPUExecutionProvider'])
    onnx_fp32, = session.run(None, {'images': images.numpy(), 'boxes': boxes.numpy()})  # the graph both backends run
    runs = {'openvino fp32': (openvino_fp32(images, boxes), 0.5, 0.5),
            'onnxruntime fp32': (torch.from_numpy(onnx_fp32), 0.5, 0.5),
            'openvino bf16': (load_generator(checkpoint, dicts, backend='openvino', precision='bf16',
                                             cache_dir=cache)(images, boxes), 3.0, 0.5),
            'torch bf16': (torch_bf16, 3.0, 0.5)}
    for name, (output, max_255, mean_255) in runs.items():
        diff = compare(reference, output.numpy())
        assert diff['max_255'] <= max_255 and diff['mean_255'] <= mean_255, (name, diff)
