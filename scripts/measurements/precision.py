"""Reduced precision against float32 on real faces: outputs and the atoms the dictionaries choose.

Each aligned face (a folder of 512-px crops; landmarks by the restore command's procedure) is
restored by the same generator in float32 and in ``--precision`` (bf16 or fp16 autocast;
matching, CAdaIN statistics and the argmax stay float32 in both). Reported: how often the two
choose the same atom (per feature level, all parts and faces together), and the output difference in 0-255
units (max and mean over pixels, the largest per face).

    PYTHONPATH=. python scripts/measurements/precision.py --faces ../shared/data/faces_lq/codeformer_cropped --max_faces 12
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch


import dfdnet.archs.dft as dft
from dfdnet.archs import load_generator
from dfdnet.pipeline.options import RestoreOptions
from dfdnet.pipeline.photo import build_preparer, resolve_model_paths
from dfdnet.pipeline.restorer import crops_to_tensor
from dfdnet.utils.benchmarking import print_report
from dfdnet.utils.image_io import list_face_images, read_rgb
from dfdnet.utils.precision import native_bf16


@contextlib.contextmanager
def recorded_atoms(log: list):
    """Record the atom indices of every ``match_atoms`` call, in call order."""
    original = dft.match_atoms

    def recording(atoms, crops, standardized=True):
        index, swap = original(atoms, crops, standardized)
        log.append((tuple(atoms.shape), index.tolist()))
        return index, swap

    dft.match_atoms = recording
    try:
        yield
    finally:
        dft.match_atoms = original


def run(model, crop, boxes, log):
    with torch.no_grad(), recorded_atoms(log):
        start = time.perf_counter()
        output = model(crops_to_tensor([crop], 'cpu'), torch.as_tensor(np.asarray(boxes)[None]))
        seconds = time.perf_counter() - start
    return ((output.float() + 1) * 127.5).clamp(0, 255)[0].numpy(), seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--faces', type=Path, required=True, help='folder of aligned 512-px faces')
    parser.add_argument('--max_faces', type=int, default=12)
    parser.add_argument('--precision', default='bf16', choices=['bf16', 'fp16'])
    parser.add_argument('--checkpoint', type=Path)
    parser.add_argument('--dict_dir', type=Path)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--json', type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)

    checkpoint, dict_dir, source = resolve_model_paths(args.checkpoint, args.dict_dir)
    models = {p: load_generator(checkpoint, dict_dir, device='cpu', precision=p) for p in ('fp32', args.precision)}
    preparer = build_preparer(RestoreOptions(aligned=True), models['fp32'].config.image_size)
    same, total = defaultdict(int), defaultdict(int)
    max_diff, mean_diff, seconds = [], [], defaultdict(float)
    faces = list_face_images(args.faces)[:args.max_faces]
    for path in faces:
        face = preparer.aligned_face(read_rgb(path))
        outputs, logs = {}, {}
        for precision, model in models.items():
            logs[precision] = []
            outputs[precision], spent = run(model, face.crop, face.boxes, logs[precision])
            seconds[precision] += spent
        for (shape, a), (_, b) in zip(logs['fp32'], logs[args.precision]):
            key = f'level of {shape[1]} channels'
            same[key] += sum(int(x == y) for x, y in zip(a, b))
            total[key] += len(a)
        diff = np.abs(outputs['fp32'] - outputs[args.precision])
        max_diff.append(float(diff.max()))
        mean_diff.append(float(diff.mean()))
    report = {
        'model': f'{source}: {checkpoint}', 'faces': len(faces), 'folder': str(args.faces),
        'precision': args.precision,
        'same_atom': {k: f'{same[k]}/{total[k]} ({same[k] / total[k]:.1%})' for k in sorted(total)},
        'same_atom_all': round(sum(same.values()) / max(sum(total.values()), 1), 4),
        'output_max_diff_255': round(max(max_diff), 3), 'output_mean_diff_255': round(float(np.mean(mean_diff)), 4),
        'seconds_per_face': {p: round(s / len(faces), 3) for p, s in seconds.items()},
        'native_bf16': native_bf16('cpu'),
    }
    print_report(report, args.json)
    return 0


if __name__ == '__main__':
    sys.exit(main())
