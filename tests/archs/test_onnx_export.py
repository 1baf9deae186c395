"""ONNX export with the boxes as an input: narrow random networks, onnxruntime against torch fp32.

The boxes differ from face to face and from the ones the graph was traced with, so a box baked
into the graph as a constant would show. Both crop modes: 'slice' (the released integer crops)
and 'roi_align' with the shipped model's compute_size and sub-pixel head.
"""
import pytest
import torch

from conftest import condition_spectral_norm_, write_random_dictionaries
from dfdnet.archs.checkpoint import load_generator, save_generator
from dfdnet.archs.dfdnet_arch import DFDNetGenerator, GeneratorConfig
from dfdnet.archs.onnx_export import compare, example_inputs, export_onnx, require

ort = pytest.importorskip('onnxruntime')
pytest.importorskip('onnx')

TOLERANCE_255 = 0.5


def _boxes_unlike_the_trace(image_size):
    """(3, 4, 4): ordinary, shifted and enlarged boxes, and one reaching past the image."""
    _, boxes = example_inputs(image_size, batch=3, seed=9)
    boxes[1] += image_size // 32
    boxes[2, :, :2] -= image_size // 16
    boxes[2, 3] = torch.tensor([-8.0, image_size * 0.6, image_size + 8.0, image_size + 8.0])
    return boxes


def _model(tmp_path, **config):
    """A narrow random generator written to tmp_path/g.pth (K = 8 dictionaries in tmp_path/dicts), loaded."""
    config = GeneratorConfig(width=8, **config)
    torch.manual_seed(0)
    model = condition_spectral_norm_(DFDNetGenerator(config))
    with torch.no_grad():
        for block in model.attn_blocks.values():
            block[-1].bias.fill_(1.0)  # confidence ~ 1: the chosen atoms shape the features
        for param in model.parameters():
            if not param.abs().max():  # residual heads start at zero: give them an output to compare
                param.normal_(0, 0.05)
    save_generator(model, tmp_path / 'g.pth')
    return load_generator(tmp_path / 'g.pth', write_random_dictionaries(tmp_path / 'dicts', num_atoms=8, config=config))


SLICE = dict(image_size=64, part_sizes=(32, 32, 32, 32), crop_mode='slice')
ROI_SUBPIXEL = dict(image_size=128, part_sizes=(32, 32, 32, 32), crop_mode='roi_align', residual=True,
                    compute_size=64, subpixel_head=True)  # the shipped model's layout


def _check_against_torch(model, path):
    """onnxruntime on 3 and 1 faces whose boxes the trace never saw, against the torch forward."""
    images, _ = example_inputs(model.config.image_size, batch=3, seed=4)
    boxes = _boxes_unlike_the_trace(model.config.image_size)
    with torch.no_grad():
        reference = model(images, boxes)
        assert (reference - model(images, boxes[[1, 0, 2]])).abs().max() > 1e-3  # the boxes matter
    session = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    assert [i.name for i in session.get_inputs()] == ['images', 'boxes'] and len(session.get_outputs()) == 1
    for batch in (3, 1):  # dynamic batch
        out, = session.run(None, {'images': images[:batch].numpy(), 'boxes': boxes[:batch].numpy()})
        diff = compare(reference[:batch], out)
        assert diff['max_255'] <= TOLERANCE_255, diff
    return diff


@pytest.mark.slow
def test_cli_export_slice_crops_matches_torch(tmp_path):
    """The released integer crops, written by dfdnet-export-model --format onnx."""
    from dfdnet.cli.export_model import main

    model = _model(tmp_path, **SLICE)
    assert main(['--format', 'onnx', '--checkpoint', str(tmp_path / 'g.pth'), '--dict_dir', str(tmp_path / 'dicts'),
                 '--output', str(tmp_path / 'out'), '--no_check']) == 0
    print('slice', _check_against_torch(model, tmp_path / 'out' / 'model.onnx'))


@pytest.mark.slow
def test_roi_align_subpixel_matches_torch(tmp_path):
    model = _model(tmp_path, **ROI_SUBPIXEL)
    print('roi_align', _check_against_torch(model, export_onnx(model, tmp_path / 'model.onnx')))


def test_missing_package_is_named():
    with pytest.raises(ImportError, match=r"'no_such_runtime_pkg'.*pip install no_such_runtime_pkg"):
        require('no_such_runtime_pkg', 'ONNX export')
