"""The narrow generator (``width``) and the two-stage recipe of the default model: a 0-DFT stage
with a trained encoder, then dictionaries on with the stage's weights (``pretrain_new_layers``)."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from conftest import condition_spectral_norm_, write_random_dictionaries
from dfdnet.archs.checkpoint import load_generator, save_generator
from dfdnet.archs.dfdnet_arch import DFDNetGenerator, GeneratorConfig
from dfdnet.archs.vgg import VGGEncoder, tap_channels
from dfdnet.utils.image_io import list_face_images
from dfdnet.errors import CheckpointError
from dfdnet.models.builders import build_component_discriminator, build_discriminator, build_generator
from dfdnet.models.dfdnet_model import DFDNetModel
from dfdnet.models.options import DiscriminatorOptions, InitOptions, OptionsError, TrainOptions

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


def _model(config, weights, tmp_path, train_encoder):
    net_g, record = build_generator(config, weights, tmp_path, seed=0)
    options = TrainOptions(train_encoder=train_encoder, perceptual_weights=(0, 0, 0, 0),
                           adversarial_weights=(0, 0, 0, 0), total_iter=1)
    net_d = build_discriminator(DiscriminatorOptions(base_channels=4, max_channels=8), seed=0)
    return DFDNetModel(net_g, net_d, options, 'cpu'), record


def _batch():
    torch.manual_seed(3)
    return {'lq': torch.rand(2, 3, 256, 256) * 2 - 1, 'gt': torch.rand(2, 3, 256, 256) * 2 - 1,
            'boxes': BOXES.expand(2, 4, 4).clone()}


def test_stage_one_trains_the_encoder_without_a_discriminator(tmp_path):
    config = dataclasses.replace(SMALL, dft_levels=())
    model, _ = _model(config, InitOptions(random_encoder_seed=0), tmp_path, train_encoder=True)
    enc_before = model.net_g.vgg_extractor.vgg_net.conv1_1.weight.clone()
    d_before = [p.clone() for p in model.net_d.parameters()]
    losses = model.optimize_parameters(_batch())
    assert set(losses) == {'l_g_total', 'l_pix', 'l_percep'} and losses['l_percep'] == 0
    assert not torch.equal(model.net_g.vgg_extractor.vgg_net.conv1_1.weight, enc_before)
    assert all(torch.equal(a, b) for a, b in zip(d_before, model.net_d.parameters()))


def test_stage_two_starts_from_stage_one_with_new_confidence_blocks(tmp_path):
    stage1 = dataclasses.replace(SMALL, dft_levels=())
    torch.manual_seed(0)
    first = DFDNetGenerator(stage1)
    save_generator(first, tmp_path / 'stage1.pth')
    dicts = write_random_dictionaries(tmp_path / 'dict', num_atoms=3, config=SMALL)
    weights = InitOptions(pretrain_network_g=str(tmp_path / 'stage1.pth'), dictionaries=str(dicts))
    with pytest.raises(CheckpointError, match='missing keys'):
        build_generator(SMALL, weights, tmp_path, seed=0)
    weights.pretrain_new_layers = True
    net_g, record = build_generator(SMALL, weights, tmp_path, seed=0)
    assert len(record['new_layers']) == 16
    assert torch.equal(net_g.vgg_extractor.vgg_net.conv5_4.weight, first.vgg_extractor.vgg_net.conv5_4.weight)
    assert torch.equal(net_g.upsample4[-2].weight, first.upsample4[-2].weight)
    model, _ = _model(SMALL, weights, tmp_path, train_encoder=False)
    enc_before = model.net_g.vgg_extractor.vgg_net.conv1_1.weight.clone()
    model.optimize_parameters(_batch())
    assert torch.equal(model.net_g.vgg_extractor.vgg_net.conv1_1.weight, enc_before)  # frozen in stage 2


def test_trained_encoder_refuses_its_own_perceptual_loss():
    with pytest.raises(OptionsError, match='perceptual'):
        TrainOptions(train_encoder=True)
    assert not TrainOptions(adversarial_weights=(0, 0.0, 0, 0)).use_discriminator
    assert TrainOptions().use_discriminator


def test_several_training_folders_in_order(tmp_path):
    import cv2
    import numpy as np

    for folder, names in (('b', ['2.png', '1.png']), ('a', ['3.png'])):
        (tmp_path / folder).mkdir()
        for name in names:
            cv2.imwrite(str(tmp_path / folder / name), np.zeros((4, 4, 3), np.uint8))
    files = list_face_images([tmp_path / 'b', tmp_path / 'a'])
    assert [f'{f.parent.name}/{f.name}' for f in files] == ['b/1.png', 'b/2.png', 'a/3.png']
    with pytest.raises(FileNotFoundError, match='no image folders'):
        list_face_images([])


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


def test_discriminator_warm_up_then_component_and_feature_matching_losses(tmp_path):
    dicts = write_random_dictionaries(tmp_path / 'dict', num_atoms=3, config=SMALL)
    net_g, _ = build_generator(SMALL, InitOptions(random_encoder_seed=0, dictionaries=str(dicts)), tmp_path, seed=0)
    options = TrainOptions(perceptual_weights=(0, 0, 0, 0), adversarial_weights=(1, 1, 1, 1), component_weight=1.0,
                           feature_matching_weight=10.0, d_warmup_iter=1, total_iter=4, lr_schedule='cosine')
    disc = DiscriminatorOptions(base_channels=4, max_channels=8, components=('left_eye', 'mouth'),
                                component_crop_sizes=(32, 48), component_base_channels=4)
    model = DFDNetModel(net_g, build_discriminator(disc, seed=0), options, 'cpu',
                        net_d_comp=build_component_discriminator(disc, seed=0))
    model.train_mode()
    g_before = [p.clone() for p in model.trainable_g]
    comp_before = [p.clone() for p in model.net_d_comp.parameters()]
    model.iteration = 0  # warm-up: D (both kinds) learns, G does not move and its schedule waits
    losses = model.optimize_parameters(_batch())
    model.step_schedulers()
    assert set(losses) == {'l_d', 'd_real', 'd_fake', 'l_d_comp', 'd_comp_real', 'd_comp_fake'}
    assert all(torch.equal(a, b) for a, b in zip(g_before, model.trainable_g))
    assert not any(torch.equal(a, b) for a, b in zip(comp_before, model.net_d_comp.parameters()) if a.ndim > 1)
    assert model.scheduler_g.last_epoch == 0 and model.scheduler_d.last_epoch == 1
    model.iteration = 1
    losses = model.optimize_parameters(_batch())
    assert {'l_g_adv', 'l_g_comp', 'l_g_fm', 'l_pix'} <= set(losses) and losses['l_g_fm'] > 0
    assert not all(torch.equal(a, b) for a, b in zip(g_before, model.trainable_g))
    state = model.state_dict()
    assert set(state['net_d_comp']) == set(model.net_d_comp.state_dict())
    with pytest.raises(ValueError, match='no component discriminator'):
        model.load_state_dict({k: v for k, v in state.items() if k != 'net_d_comp'})


def test_component_weight_needs_components():
    from pathlib import Path

    from dfdnet.models.options import parse_options

    smoke = Path(__file__).resolve().parents[2] / 'options' / 'train_smoke.yml'
    with pytest.raises(OptionsError, match='need discriminator.components'):
        parse_options(smoke, ['train.component_weight=1.0'])
