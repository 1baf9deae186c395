"""DFDNetModel's optimisation steps: what each kind of run trains (the encoder in a 0-DFT run, a frozen
encoder once the dictionaries are on, discriminators with their warm-up, component discriminators and
feature matching), and runs started from an earlier run's weights."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from conftest import write_random_dictionaries
from dfdnet.archs.checkpoint import save_generator
from dfdnet.archs.dfdnet_arch import DFDNetGenerator, GeneratorConfig
from dfdnet.errors import CheckpointError
from dfdnet.models.builders import build_component_discriminator, build_discriminator, build_generator
from dfdnet.models.dfdnet_model import DFDNetModel
from dfdnet.models.options import DiscriminatorOptions, InitOptions, OptionsError, TrainOptions

SMALL = GeneratorConfig(image_size=256, width=8, part_sizes=(40, 40, 32, 56), crop_mode='roi_align')
BOXES = torch.tensor([[[70, 100, 115, 130], [140, 100, 185, 130], [110, 125, 140, 160], [95, 165, 160, 205]]])


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


def test_a_zero_dft_run_trains_the_encoder_without_a_discriminator(tmp_path):
    config = dataclasses.replace(SMALL, dft_levels=())
    model, _ = _model(config, InitOptions(random_encoder_seed=0), tmp_path, train_encoder=True)
    enc_before = model.net_g.vgg_extractor.vgg_net.conv1_1.weight.clone()
    d_before = [p.clone() for p in model.net_d.parameters()]
    losses = model.optimize_parameters(_batch())
    assert set(losses) == {'l_g_total', 'l_pix', 'l_percep'} and losses['l_percep'] == 0
    assert not torch.equal(model.net_g.vgg_extractor.vgg_net.conv1_1.weight, enc_before)
    assert all(torch.equal(a, b) for a, b in zip(d_before, model.net_d.parameters()))


def test_a_run_with_dictionaries_starts_from_a_zero_dft_run_with_new_confidence_blocks(tmp_path):
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
