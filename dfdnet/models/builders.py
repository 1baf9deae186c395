"""Build the training networks from options: generator (encoder + dictionaries), discriminator,
perceptual network. Nothing is silently random: a random encoder or random dictionaries are used
only when their seed is given explicitly, and that is logged and recorded in the experiment.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch

from dfdnet.archs.checkpoint import load_state_strict, read_checkpoint
from dfdnet.archs.dfdnet_arch import DFDNetGenerator, GeneratorConfig
from dfdnet.archs.dictionary import dictionary_file_name, load_dictionaries
from dfdnet.archs.discriminator import ComponentDiscriminator, MultiScaleDiscriminator
from dfdnet.archs.vgg import load_vgg_encoder, seed_random_weights_
from dfdnet.utils.files import atomic_path

logger = logging.getLogger(__name__)

# Layers a later stage may add to a pretrained generator (init.pretrain_new_layers): the
# confidence blocks of the DFT levels and the full-resolution heads of a 512-in, 256-core network.
NEW_LAYER_PREFIXES = ('attn_blocks.', 'full_res_head.', 'subpixel_head.')


def write_random_dictionary(folder, config: GeneratorConfig, num_atoms: int, seed: int) -> Path:
    """Write a released-layout dictionary folder of standard-normal atoms (smoke runs only).

    Reused if it already holds the files of the same (seed, K, layout) record.
    """
    folder = Path(folder)
    record = {'random_dictionary_seed': int(seed), 'num_atoms': int(num_atoms),
              'layout': {f'{p}_{s}': list(v) for (p, s), v in config.dictionary_layout().items()}}
    record_path = folder / 'random_dictionary.json'
    if record_path.is_file() and json.loads(record_path.read_text()) == record:
        return folder
    rng = np.random.default_rng(seed)
    for (part, fsize), (channels, size) in config.dictionary_layout().items():
        atoms = rng.standard_normal((num_atoms, channels, size, size)).astype(np.float32)
        with atomic_path(folder / dictionary_file_name(part, fsize)) as tmp:
            with open(tmp, 'wb') as fh:
                np.save(fh, atoms)
    with atomic_path(record_path) as tmp:
        tmp.write_text(json.dumps(record, indent=1))
    return folder


def build_generator(config: GeneratorConfig, weights, experiment_dir, seed: int) -> tuple[DFDNetGenerator, dict]:
    """The generator to train and a record of where its fixed parts came from.

    ``weights`` is ``InitOptions``. Trainable layers start from ``pretrain_network_g`` or from
    PyTorch's default initialisation under ``seed``; the encoder is frozen.
    """
    record = {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net_g = DFDNetGenerator(config)
    if weights.pretrain_network_g:
        state, _, fmt = read_checkpoint(weights.pretrain_network_g)
        if weights.pretrain_new_layers:  # e.g. a 0-DFT stage's weights for a network with dictionaries
            own = net_g.state_dict()
            fresh = {k: v for k, v in own.items() if k.startswith(NEW_LAYER_PREFIXES) and k not in state}
            new = sorted({'.'.join(k.split('.')[:2]) if k.startswith('attn_blocks.') else k.split('.')[0]
                          for k in fresh})
            state = {**fresh, **state}
            if new:
                logger.info('layers not in %s keep their initialisation: %s', weights.pretrain_network_g, new)
                record['new_layers'] = new
        if weights.pretrain_widen_subpixel_head:
            if net_g.subpixel_head is None:
                raise ValueError('init.pretrain_widen_subpixel_head needs generator.subpixel_head: true')
            head = {k: v for k, v in state.items() if k.startswith('subpixel_head.')}
            if not head:
                raise ValueError(f'{weights.pretrain_network_g} has no subpixel head to widen')
            widened = net_g.subpixel_head.widened_state(head, prefix='subpixel_head.')
            state = {**state, **{f'subpixel_head.{k}': v for k, v in widened.items()}}
            record['widened_subpixel_head'] = [int(head['subpixel_head.body.0.weight'].shape[0]),
                                               int(widened['body.0.weight'].shape[0])]
            logger.info('subpixel head widened from %d to %d channels (same function)', *record['widened_subpixel_head'])
        load_state_strict(net_g, state, source=str(weights.pretrain_network_g))
        record['pretrain_network_g'] = str(weights.pretrain_network_g)
        logger.info('generator initialised from %s (%s format)', weights.pretrain_network_g, fmt)
    if weights.encoder_weights:
        encoder = load_vgg_encoder(config.encoder, weights.encoder_weights)
        net_g.vgg_extractor.vgg_net.load_state_dict(encoder.vgg_net.state_dict())
        record['encoder_weights'] = str(weights.encoder_weights)
    elif not weights.pretrain_network_g:
        if weights.random_encoder_seed is None:
            raise ValueError('no encoder weights given (pretrain_network_g / encoder_weights / random_encoder_seed)')
        seed_random_weights_(net_g.vgg_extractor, weights.random_encoder_seed)
        record['random_encoder_seed'] = int(weights.random_encoder_seed)
        logger.warning('the encoder starts from RANDOM weights (random_encoder_seed=%d): for smoke tests only, '
                       'unless it is trained (train.train_encoder)', weights.random_encoder_seed)
    net_g.vgg_extractor.requires_grad_(False)  # DFDNetModel unfreezes it for train.train_encoder
    if config.dft_levels:
        if weights.dictionaries:
            path = Path(weights.dictionaries)
            record['dictionaries'] = str(path)
        else:
            path = write_random_dictionary(
                Path(experiment_dir) / f'random_dictionary_seed{weights.random_dictionary_seed}',
                config, weights.random_dictionary_atoms, weights.random_dictionary_seed)
            record['random_dictionary_seed'] = int(weights.random_dictionary_seed)
            record['dictionaries'] = str(path)
            logger.warning('RANDOM dictionaries (random_dictionary_seed=%d, K=%d) in %s: for smoke tests only',
                           weights.random_dictionary_seed, weights.random_dictionary_atoms, path)
        net_g.set_dictionaries(load_dictionaries(path, config.dictionary_layout(), standardized=config.use_cadain))
    return net_g, record


def build_discriminator(options, seed: int) -> MultiScaleDiscriminator:
    """``options`` is ``DiscriminatorOptions``; initialised under ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        return MultiScaleDiscriminator(options.scales, options.base_channels, options.num_down, options.max_channels)


def build_component_discriminator(options, seed: int) -> ComponentDiscriminator | None:
    """``options`` is ``DiscriminatorOptions``; None when it names no components."""
    if not options.components:
        return None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 2)
        return ComponentDiscriminator(options.components, options.component_crop_sizes, options.component_enlarge,
                                      options.component_base_channels, options.num_down, options.max_channels)


def build_perceptual_net(train_options, net_g: DFDNetGenerator):
    """The frozen network of the perceptual loss: the generator's own encoder, or VggFace from a file."""
    if train_options.perceptual_net == 'generator':
        return net_g.vgg_extractor
    return load_vgg_encoder('vggface', train_options.perceptual_net_file)
