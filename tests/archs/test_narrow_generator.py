"""The narrow generator (``width``): its layout, forward and round trip, the 0-DFT ablation of a DFT
checkpoint, and reduced-precision inference."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from conftest import condition_spectral_norm_, write_random_dictionaries
from dfdnet.archs.checkpoint import load_generator, save_generator
from dfdnet.archs.dfdnet_arch import DFDNetGenerator, GeneratorConfig
from dfdnet.archs.vgg import VGGEncoder, tap_channels
from dfdnet.errors import CheckpointError
from dfdnet.utils.image_io import list_face_images

SMALL = GeneratorConfig(image_size=256, width=8, part_sizes=(40, 40, 32, 56), crop_mode='roi_align')
BOXES = torch.tensor([[[70, 100, 115, 130], [140, 100, 185, 130], [110, 125, 140, 160], [95, 165, 160, 205]]])


def test_vgg_width_scales_every_channel_and_keeps_taps():
    encoder = VGGEncoder('vgg19', width=8)
    feats = encoder(torch.zeros(1, 3, 64, 64))
    assert [tuple(f.shape[1:]) for f in feats] == [(16, 32, 32), (32, 16, 16), (64, 8, 8), (64, 4, 4)]
    assert tap_channels(8) == (16, 32, 64, 64) and tap_channels() == (128, 256, 512, 512)
    full = sum(p.numel() for p in VGGEncoder('vgg19').parameters())
    narrow = sum(p.numel() for p in VGGEncoder('vgg19', width=16).parameters())
    assert 15 < full / narrow < 17  # conv weights scale with width^2
    with pytest.raises(ValueError, match='width'):
        VGGEncoder('vgg19', width=0)


def test_narrow_generator_layout_forward_and_round_trip(tmp_path):
    assert SMALL.dictionary_layout()[('left_eye', 128)] == (16, 20)
    assert SMALL.dictionary_layout()[('mouth', 16)] == (64, 3)
    torch.manual_seed(0)
    model = condition_spectral_norm_(DFDNetGenerator(SMALL)).eval()
    assert model.upsample3.conv1[1].out_channels == 8 and model.attn_blocks['nose_64'][0].in_channels == 32
    dicts = write_random_dictionaries(tmp_path / 'dict', num_atoms=3, config=SMALL)
    path = save_generator(model, tmp_path / 'g.pth') or tmp_path / 'g.pth'
    loaded = load_generator(path, dicts)
    assert loaded.config.width == 8 and loaded.config.image_size == 256
    x = torch.rand(1, 3, 256, 256) * 2 - 1
    with torch.no_grad():
        out = loaded(x, BOXES)
        model.set_dictionaries(loaded.dictionaries)
        ref = model(x, BOXES)
    assert out.shape == (1, 3, 256, 256)
    assert torch.allclose(out, ref, atol=1e-5)  # folded spectral norm + channels-last = eval forward
    # The released layout (width 64) does not take a width-8 file: a clear error, not a crash.
    with pytest.raises(CheckpointError, match='g.pth'):
        load_generator(path, None, config=GeneratorConfig(dft_levels=()))


def test_zero_dft_ablation_loads_a_dft_checkpoint_without_its_confidence_blocks(tmp_path):
    torch.manual_seed(1)
    path = tmp_path / 'g.pth'
    save_generator(condition_spectral_norm_(DFDNetGenerator(SMALL)), path)
    ablation = load_generator(path, None, config=dataclasses.replace(SMALL, dft_levels=()))
    assert len(ablation.attn_blocks) == 0 and ablation.dictionaries is None
    with torch.no_grad():
        assert ablation(torch.zeros(1, 3, 256, 256), BOXES).shape == (1, 3, 256, 256)


def test_reduced_precision_inference_stays_close_to_fp32(tmp_path, shared_data):
    """load_generator(precision=...): bf16/fp16 autocast for the convolutions; matching and the
    residual in fp32. On a real face the outputs stay within a few grey levels of fp32."""
    import cv2

    from dfdnet.utils.precision import native_bf16, resolve_precision

    path = tmp_path / 'g.pth'
    torch.manual_seed(0)
    save_generator(condition_spectral_norm_(DFDNetGenerator(SMALL)), path)
    dicts = write_random_dictionaries(tmp_path / 'dicts', config=SMALL)
    face = cv2.imread(str(list_face_images(shared_data / 'faces_hq' / 'celebahq_512')[0]))[:, :, ::-1]
    images = torch.from_numpy(cv2.resize(face, (256, 256)).copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
    outputs = {}
    for precision in ('fp32', 'bf16', 'fp16'):
        model = load_generator(path, dicts, precision=precision)
        assert model.precision == precision
        with torch.inference_mode():
            outputs[precision] = model(images, BOXES)
        assert outputs[precision].dtype == torch.float32
    for precision in ('bf16', 'fp16'):
        diff = (outputs[precision] - outputs['fp32']).abs() * 127.5  # grey levels
        assert 0 < diff.mean() < 1.0 and diff.max() < 12, (precision, diff.mean(), diff.max())
    assert resolve_precision('auto', 'cpu') == ('bf16' if native_bf16('cpu') else 'fp32')
    with pytest.raises(ValueError, match='precision'):
        load_generator(path, dicts, precision='int8')
