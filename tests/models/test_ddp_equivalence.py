"""Data parallelism is exact: 2 ranks with batch B take the step of 1 rank with batch 2B.

One G + D step of the smoke model (width 8, 256 px, whole-face and component discriminators,
feature matching) on a fixed batch of 2 faces: in this process with both, and under torchrun with
2 CPU ranks (gloo), each with one. DDP averages the gradients, every loss is a batch mean, and the
spectral-norm vectors are broadcast from rank 0, so the gradients and the weights after the step
agree (to float32 rounding).
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dfdnet.face.components import component_boxes
from dfdnet.models.builders import build_component_discriminator, build_discriminator, build_generator, \
    build_perceptual_net
from dfdnet.models.dfdnet_model import DFDNetModel, unwrap
from dfdnet.models.options import parse_options

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SIZE = 256
LR = 2e-4  # lr_g and lr_d of train_smoke.yml


def _batch():
    generator = torch.Generator().manual_seed(0)
    gt = torch.rand(2, 3, SIZE, SIZE, generator=generator) * 2 - 1
    lq = (gt + 0.2 * torch.randn(2, 3, SIZE, SIZE, generator=generator)).clamp(-1, 1)
    points = np.array([[x, y] for y in np.linspace(0.35, 0.8, 4) for x in np.linspace(0.25, 0.75, 17)])[:68]
    boxes = torch.as_tensor(np.stack([component_boxes(points * SIZE, SIZE)] * 2), dtype=torch.long)
    return {'lq': lq, 'gt': gt, 'boxes': boxes}


def one_step(experiments: Path, rank: int, world_size: int) -> dict:
    """The G + D weights and gradients after one step on this rank's share of ``_batch()``."""
    options, _ = parse_options(ROOT / 'options' / 'train_smoke.yml', [
        f'experiments_root={experiments}', 'train.ema_decay=0', 'discriminator.base_channels=8',
        'discriminator.components=[left_eye, right_eye, mouth]', 'discriminator.component_base_channels=8',
        'train.component_weight=1.0', 'train.feature_matching_weight=10.0'])
    net_g, _ = build_generator(options.generator, options.init, experiments, options.manual_seed)
    model = DFDNetModel(net_g, build_discriminator(options.discriminator, options.manual_seed), options.train, 'cpu',
                        build_perceptual_net(options.train, net_g), distributed=world_size > 1,
                        net_d_comp=build_component_discriminator(options.discriminator, options.manual_seed),
                        components=options.discriminator)
    model.train_mode()
    share = slice(rank * 2 // world_size, (rank + 1) * 2 // world_size)
    model.optimize_parameters({name: value[share] for name, value in _batch().items()})
    found = {}
    for prefix, net in (('g.', model.net_g), ('d.', model.net_d)):
        for name, parameter in unwrap(net).named_parameters():
            if parameter.requires_grad:
                found[prefix + name] = parameter.detach().clone()
                found[prefix + name + '.grad'] = parameter.grad.clone()
    return found


WORKER = """
import os, sys, torch, torch.distributed as dist
sys.path.insert(0, {tests!r})
from test_ddp_equivalence import one_step
dist.init_process_group('gloo')
found = one_step({folder!r}, dist.get_rank(), dist.get_world_size())
if dist.get_rank() == 0:
    torch.save(found, {out!r})
dist.destroy_process_group()
"""


def test_two_ranks_with_batch_1_take_the_step_of_one_rank_with_batch_2(tmp_path):
    script, out = tmp_path / 'worker.py', tmp_path / 'two_ranks.pt'
    script.write_text(WORKER.format(tests=str(Path(__file__).parent), folder=str(tmp_path / 'two'), out=str(out)))
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(ROOT))
    process = subprocess.Popen([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2',
                                str(script)], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    single = one_step(tmp_path / 'one', 0, 1)  # meanwhile, batch 2 in this process
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-3000:]
    double = torch.load(out)
    assert double.keys() == single.keys() and any(k.startswith('d.') for k in single)
    for name, value in single.items():
        if name.endswith('.grad'):  # the averaged gradients: to float32 rounding
            scale = value.abs().max().item() or 1.0
            worst = (double[name] - value).abs().max().item()
            assert worst <= 1e-3 * scale, f'{name}: differs by {worst:.3g} (largest value {scale:.3g})'
        else:  # Adam's first step moves a weight by about lr sign(g): where |g| is within rounding of 0 the
            grad = single[name + '.grad'].abs()  # sign may flip, so the weights are compared where it cannot
            clear = grad > 1e-2 * grad.max()
            worst = (double[name] - value)[clear].abs().max().item() if clear.any() else 0.0
            assert worst <= 1e-2 * LR, f'{name}: differs by {worst:.3g} after a step of at most {LR}'
