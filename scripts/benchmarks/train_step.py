"""Time one generator training step (forward, pixel loss, backward, Adam) per configuration, in one
process so that the ratios are comparable (see docs/benchmarks.md).

    PYTHONPATH=. python scripts/benchmarks/train_step.py --width 16 --batch 4 --repeats 3 --threads 2

Rows: the 256-px DFDNet256 core; 512-px faces with that core (``compute_size: 256``), without and
with ``full_res_head``; each in float32 and in bf16 autocast with channels-last tensors. Random
weights and random K = 64 dictionaries; the encoder is frozen as in training.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


from dfdnet.archs.dfdnet_arch import DFDNetGenerator, GeneratorConfig
from dfdnet.archs.dictionary import load_dictionaries
from dfdnet.models.builders import write_random_dictionary
from dfdnet.utils.precision import native_bf16

BOXES_512 = torch.tensor([[[150, 180, 230, 260], [280, 180, 360, 260], [216, 230, 296, 310], [190, 320, 320, 400]]])


def time_step(config: GeneratorConfig, dict_dir: Path, batch: int, amp: bool, repeats: int) -> float:
    """Best time (s) of ``repeats`` steps after one warm-up."""
    torch.manual_seed(0)
    model = DFDNetGenerator(config)
    model.set_dictionaries(load_dictionaries(dict_dir, config.dictionary_layout(), standardized=config.use_cadain))
    model.vgg_extractor.requires_grad_(False)
    layout = torch.channels_last if amp else torch.contiguous_format
    model.to(memory_format=layout).train()
    model.vgg_extractor.eval()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    size = config.image_size
    images = (torch.rand(batch, 3, size, size) * 2 - 1).contiguous(memory_format=layout)
    boxes = (BOXES_512 * size // 512).expand(batch, 4, 4)
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=amp):
            output = model(images, boxes)
        loss = torch.nn.functional.mse_loss(output.float(), images)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return min(times[1:])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--width', type=int, default=16)
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--skip_bf16', action='store_true', help='float32 rows only')
    parser.add_argument('--json', type=Path, default=None, help='also write the rows here')
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    core = GeneratorConfig(image_size=256, width=args.width, part_sizes=(40, 40, 32, 56), crop_mode='roi_align',
                           residual=True)
    configs = {'DFDNet256 core, 256 px': core,
               '512 px, 256-px core': dataclasses.replace(core, image_size=512, compute_size=256),
               '512 px, 256-px core + full_res_head': dataclasses.replace(core, image_size=512, compute_size=256,
                                                                          full_res_head=True)}
    print(f'native bf16 on this CPU: {native_bf16("cpu")}; width {args.width}, batch {args.batch}, '
          f'{args.threads} threads, best of {args.repeats}')
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        dict_dir = write_random_dictionary(Path(tmp), core, num_atoms=64, seed=0)
        for name, config in configs.items():
            fp32 = time_step(config, dict_dir, args.batch, False, args.repeats)
            bf16 = None if args.skip_bf16 else time_step(config, dict_dir, args.batch, True, args.repeats)
            rows.append({'model': name, 'fp32_s': fp32, 'bf16_s': bf16})
            ratio = f'{bf16 / fp32:.2f}x' if bf16 else 'not run'
            print(f'| {name} | {fp32:.2f} | {bf16 if bf16 is None else round(bf16, 2)} | {ratio} |', flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0 if all(np.isfinite(r['fp32_s']) for r in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
