"""512 in, 512 out with a 256-px core (``GeneratorConfig.compute_size``): the core's input and boxes,
the residual output, the full-resolution subpixel head, and the full-resolution model's bf16 +
channels-last training."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import condition_spectral_norm_, write_random_dictionaries
from dfdnet.archs.checkpoint import load_generator, save_generator
from dfdnet.archs.dfdnet_arch import DFDNetGenerator, GeneratorConfig, to_core_resolution
from dfdnet.archs.dictionary import load_dictionaries
from dfdnet.errors import CheckpointError
from dfdnet.utils.options import OptionsError
from dfdnet.models.builders import build_discriminator, build_generator
from dfdnet.models.dfdnet_model import DFDNetModel
from dfdnet.models.options import DiscriminatorOptions, InitOptions, TrainOptions

CORE = GeneratorConfig(image_size=256, width=8, part_sizes=(40, 40, 32, 56), crop_mode='roi_align', residual=True)
FULL = dataclasses.replace(CORE, image_size=512, compute_size=256)
BOXES_256 = torch.tensor([[[70, 100, 115, 130], [140, 100, 185, 130], [110, 125, 140, 160], [95, 165, 160, 205]]])
BOXES_512 = BOXES_256 * 2


def _random_face(size=512, seed=0):
    torch.manual_seed(seed)
    low = torch.rand(1, 3, size // 8, size // 8)
    return (F.interpolate(low, size=size, mode='bicubic', align_corners=False) * 2 - 1).clamp(-1, 1)


def test_compute_size_options_are_checked():
    assert FULL.core_size == 256 and FULL.feature_sizes == (128, 64, 32, 16)
    assert FULL.dictionary_layout() == CORE.dictionary_layout()  # the same dictionaries fit both
    assert dataclasses.replace(CORE, compute_size=256).compute_size is None  # = image_size: no core
    with pytest.raises(ValueError, match='residual'):
        dataclasses.replace(FULL, residual=False)
    with pytest.raises(ValueError, match='divides'):
        dataclasses.replace(FULL, compute_size=208)
    with pytest.raises(ValueError, match='full_res_head'):
        dataclasses.replace(CORE, full_res_head=True)


def test_core_sees_the_area_downscaled_face_and_scaled_boxes(tmp_path):
    torch.manual_seed(0)
    model = condition_spectral_norm_(DFDNetGenerator(FULL)).eval()
    model.set_dictionaries(load_dictionaries(write_random_dictionaries(tmp_path / 'd', num_atoms=3, config=FULL),
                                             FULL.dictionary_layout()))
    core = DFDNetGenerator(CORE).eval()
    core.load_state_dict(model.state_dict())
    core.set_dictionaries(model.dictionaries)
    image = _random_face()
    small, boxes = to_core_resolution(image, BOXES_512, FULL)
    assert torch.equal(boxes, BOXES_256) and torch.allclose(small, F.avg_pool2d(image, 2))
    with torch.no_grad():
        feats, updated = model.encode(image, BOXES_512)
        ref_feats, ref_updated = core.encode(small, BOXES_256)
        restored = model(image, BOXES_512)
    for a, b in zip(updated, ref_updated):
        assert torch.allclose(a, b, atol=1e-5)
    assert restored.shape == (1, 3, 512, 512)
    # A new network adds nothing (zero last conv): the 512-px input comes back exactly, detail included.
    assert torch.equal(restored, image)


def test_output_is_full_resolution_input_plus_upsampled_core_residual(tmp_path):
    torch.manual_seed(1)
    model = DFDNetGenerator(dataclasses.replace(FULL, dft_levels=())).eval()
    torch.nn.init.normal_(model.upsample4[-2].weight, std=0.02)  # a trained-looking residual
    captured = {}
    model.upsample4.register_forward_hook(lambda mod, inp, out: captured.setdefault('residual', out))
    image = _random_face(seed=2) * 0.5  # no clamping
    sharp = image + 0.2 * torch.sign(torch.randn_like(image))  # detail above the core's band
    with torch.no_grad():
        out = model(sharp.clamp(-1, 1), BOXES_512)
    expected = sharp.clamp(-1, 1) + F.interpolate(captured['residual'], scale_factor=2, mode='bilinear',
                                                  align_corners=False)
    assert captured['residual'].shape[-1] == 256
    assert torch.allclose(out, expected.clamp(-1, 1), atol=1e-6)
    assert (out - sharp).abs().max() > 1e-3  # the core did change the face


def _with_new_head(start: DFDNetGenerator, config: GeneratorConfig, tmp_path):
    """``config``'s generator built from ``start``'s saved weights, its new layers initialised
    (``init.pretrain_new_layers``); returns (generator, init record, dictionary folder)."""
    save_generator(start, tmp_path / 'start.pth')
    dicts = write_random_dictionaries(tmp_path / 'dict', num_atoms=3, config=CORE)
    init = InitOptions(pretrain_network_g=str(tmp_path / 'start.pth'), dictionaries=str(dicts),
                       pretrain_new_layers=True)
    net_g, record = build_generator(config, init, tmp_path, seed=0)
    return net_g, record, dicts


def test_full_resolution_head_round_trip_and_new_layers(tmp_path):
    config = dataclasses.replace(FULL, full_res_head=True)
    torch.manual_seed(0)
    core = condition_spectral_norm_(DFDNetGenerator(CORE))
    net_g, record, dicts = _with_new_head(core, config, tmp_path)
    assert record['new_layers'] == ['full_res_head']
    assert torch.equal(net_g.upsample3.convup[1].weight_orig, core.upsample3.convup[1].weight_orig)
    net_g.eval()
    torch.nn.init.normal_(net_g.full_res_head.out.weight, std=0.01)
    save_generator(net_g, tmp_path / 'full.pth')
    loaded = load_generator(tmp_path / 'full.pth', dicts)
    assert loaded.config == config
    image = _random_face(seed=3)
    with torch.no_grad():
        assert torch.allclose(loaded(image, BOXES_512), net_g(image, BOXES_512), atol=1e-5)


def test_subpixel_head_starts_as_the_plain_core_and_adds_detail_at_full_resolution(tmp_path):
    config = dataclasses.replace(FULL, subpixel_head=True)
    with pytest.raises(ValueError, match='subpixel_head needs'):
        dataclasses.replace(CORE, subpixel_head=True)
    with pytest.raises(ValueError, match='one of'):
        dataclasses.replace(config, full_res_head=True)
    torch.manual_seed(0)
    plain = condition_spectral_norm_(DFDNetGenerator(FULL))
    torch.nn.init.normal_(plain.upsample4[-2].weight, std=0.01)  # a core that changes the face
    net_g, record, dicts = _with_new_head(plain, config, tmp_path)
    assert record['new_layers'] == ['subpixel_head']
    plain.set_dictionaries(load_dictionaries(dicts, FULL.dictionary_layout()))
    plain.eval(), net_g.eval()
    image = _random_face(seed=4)
    with torch.no_grad():
        assert torch.equal(net_g(image, BOXES_512), plain(image, BOXES_512))  # a new head adds nothing
        torch.nn.init.normal_(net_g.subpixel_head.out.weight, std=0.05)
        detail = net_g(image, BOXES_512) - plain(image, BOXES_512)
    assert detail.shape == (1, 3, 512, 512)
    # Detail at full resolution: the 2x2 blocks of the residual differ within themselves, which a
    # residual upsampled from 256 px cannot do this strongly.
    blocks = detail[0, :, :, :].unfold(1, 2, 2).unfold(2, 2, 2).reshape(3, 256, 256, 4)
    assert (blocks.std(-1).mean() > 0.2 * detail.abs().mean())
    save_generator(net_g, tmp_path / 'sub.pth')
    loaded = load_generator(tmp_path / 'sub.pth', dicts)
    assert loaded.config == config
    with torch.no_grad():
        assert torch.allclose(loaded(image, BOXES_512), net_g(image, BOXES_512), atol=1e-5)


def test_widened_subpixel_head_keeps_the_function_and_only_the_head_trains(tmp_path):
    narrow = dataclasses.replace(FULL, subpixel_head=True)
    torch.manual_seed(0)
    start = condition_spectral_norm_(DFDNetGenerator(narrow))
    torch.nn.init.normal_(start.subpixel_head.out.weight, std=0.05)  # a head that does something
    save_generator(start, tmp_path / 'narrow.pth')
    dicts = write_random_dictionaries(tmp_path / 'dict', num_atoms=3, config=CORE)
    start.set_dictionaries(load_dictionaries(dicts, FULL.dictionary_layout()))
    wide = dataclasses.replace(narrow, subpixel_width=20)
    with pytest.raises(ValueError, match='subpixel_width'):
        dataclasses.replace(FULL, subpixel_width=20)
    init = InitOptions(pretrain_network_g=str(tmp_path / 'narrow.pth'), dictionaries=str(dicts))
    with pytest.raises(CheckpointError, match='size mismatch for subpixel_head'):
        build_generator(wide, init, tmp_path, seed=0)  # a wider head is never filled silently
    init.pretrain_widen_subpixel_head = True
    net_g, record = build_generator(wide, init, tmp_path, seed=0)
    assert record['widened_subpixel_head'] == [8, 20]
    assert net_g.subpixel_head.out.weight.shape == (12, 20, 3, 3)
    image = _random_face(seed=6)
    start.eval(), net_g.eval()
    with torch.no_grad():
        assert torch.allclose(net_g(image, BOXES_512), start(image, BOXES_512), atol=1e-6)
    with pytest.raises(ValueError, match='cannot widen'):
        start.subpixel_head.widened_state({'body.0.weight': torch.zeros(30, 1, 3, 3)})

    options = TrainOptions(perceptual_weights=(0, 0, 0, 0), adversarial_weights=(0, 0, 0, 0), total_iter=1,
                           train_only=('subpixel_head',))
    net_d = build_discriminator(DiscriminatorOptions(scales=(1,), base_channels=4, num_down=1, max_channels=8), seed=0)
    model = DFDNetModel(net_g, net_d, options, 'cpu')
    before = {k: v.clone() for k, v in net_g.state_dict().items()}
    model.train_mode()
    assert not net_g.upsample3.training and net_g.subpixel_head.training
    batch = {'lq': image.expand(2, -1, -1, -1).contiguous(),
             'gt': _random_face(seed=7).expand(2, -1, -1, -1).contiguous(), 'boxes': BOXES_512.expand(2, 4, 4)}
    model.optimize_parameters(batch)
    after = net_g.state_dict()
    changed = sorted(k for k in before if not torch.equal(before[k], after[k]))
    assert changed and all(k.startswith('subpixel_head.') for k in changed)  # spectral-norm vectors included
    with pytest.raises(OptionsError, match='train_only'):
        TrainOptions(train_only=())
    with pytest.raises(ValueError, match="no module 'tail'"):
        DFDNetModel(net_g, net_d, dataclasses.replace(options, train_only=('tail',)), 'cpu')


def test_subpixel_blocks_added_to_a_trained_head_keep_its_function(tmp_path):
    headed = dataclasses.replace(FULL, subpixel_head=True)
    with pytest.raises(ValueError, match='subpixel_blocks'):
        dataclasses.replace(FULL, subpixel_blocks=2)  # blocks without a head
    with pytest.raises(ValueError, match='subpixel_blocks'):
        dataclasses.replace(headed, subpixel_blocks=-1)
    torch.manual_seed(0)
    start = condition_spectral_norm_(DFDNetGenerator(headed))
    torch.nn.init.normal_(start.subpixel_head.out.weight, std=0.05)  # a trained head that does something
    config = dataclasses.replace(headed, subpixel_blocks=2)
    net_g, record, dicts = _with_new_head(start, config, tmp_path)
    assert record['new_layers'] == ['subpixel_head']
    new_keys = sorted(k for k in net_g.state_dict() if k not in start.state_dict())
    assert new_keys == [f'subpixel_head.blocks.{i}.body.{j}.{w}' for i in (0, 1) for j in (0, 2)
                        for w in ('bias', 'weight')]
    assert torch.equal(net_g.subpixel_head.out.weight, start.subpixel_head.out.weight)
    start.set_dictionaries(load_dictionaries(dicts, FULL.dictionary_layout()))
    start.eval(), net_g.eval()
    image = _random_face(seed=8)
    with torch.no_grad():
        assert torch.equal(net_g(image, BOXES_512), start(image, BOXES_512))  # new blocks add nothing
        torch.nn.init.normal_(net_g.subpixel_head.blocks[1].body[2].weight, std=0.05)
        assert not torch.allclose(net_g(image, BOXES_512), start(image, BOXES_512), atol=1e-3)
    save_generator(net_g, tmp_path / 'blocks.pth')
    loaded = load_generator(tmp_path / 'blocks.pth', dicts)
    assert loaded.config == config and loaded.config.subpixel_blocks == 2
    with torch.no_grad():
        assert torch.allclose(loaded(image, BOXES_512), net_g(image, BOXES_512), atol=1e-5)
    wider = DFDNetGenerator(dataclasses.replace(config, subpixel_width=12)).subpixel_head
    with pytest.raises(ValueError, match='residual blocks'):  # trained blocks are never dropped silently
        wider.widened_state(net_g.subpixel_head.state_dict())


def test_bf16_training_runs_channels_last(tmp_path):
    config = dataclasses.replace(FULL, dft_levels=())
    net_g, _ = build_generator(config, InitOptions(random_encoder_seed=0), tmp_path, seed=0)
    options = TrainOptions(perceptual_weights=(0, 0, 0, 0), adversarial_weights=(0, 0, 0, 0), total_iter=1,
                           amp='bf16')
    net_d = build_discriminator(DiscriminatorOptions(base_channels=4, max_channels=8), seed=0)
    model = DFDNetModel(net_g, net_d, options, 'cpu')
    assert model.net_g.upsample3.convup[1].weight_orig.is_contiguous(memory_format=torch.channels_last)
    before = model.net_g.upsample4[-2].weight.clone()
    batch = {'lq': _random_face(seed=4).expand(2, -1, -1, -1).contiguous(),
             'gt': _random_face(seed=5).expand(2, -1, -1, -1).contiguous(), 'boxes': BOXES_512.expand(2, 4, 4)}
    losses = model.optimize_parameters(batch)
    assert np.isfinite(losses['l_pix']) and losses['l_pix'] > 0
    assert not torch.equal(model.net_g.upsample4[-2].weight, before)  # the zero-started last conv learns first
    assert model.net_g.upsample4[-2].weight.dtype == torch.float32  # autocast keeps fp32 master weights
