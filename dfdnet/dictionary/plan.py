"""``build_dictionary.py --plan N --k K``: the disk, memory and time a build of N faces needs,
printed before any work.

Disk: the float16 feature cache of the bounded sample (``max_rows_per_atom`` x K rows per
dictionary; k-means reads the shares in place, so nothing is copied), the landmark cache and the
16 dictionaries. Memory: one process's k-means of the widest dictionary. Time: the encoder's and
the k-means' floating-point operations over the throughput of this device's matrix products,
measured for a fraction of a second, plus dlib's landmarks at the rate measured here.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from dfdnet.dictionary.sharding import sample_size

LANDMARK_BYTES_PER_FACE = 700       # landmarks.npz: 68 x 2 float32, the affine, the name and flags
LANDMARK_SECONDS_PER_FACE = 0.15    # dlib HOG + 68 points on an aligned 512-px face, one core (docs/scaling.md)
KMEANS_ITERATIONS = 30              # Lloyd passes budgeted (the passes measured: docs/scaling.md)


@dataclass
class BuildPlan:
    faces: int
    sampled_faces: int
    rows: int                  # per dictionary (faces x views)
    feature_bytes: int
    landmark_bytes: int
    dictionary_bytes: int
    kmeans_memory_bytes: int
    encoder_flops: float       # all sampled views
    kmeans_flops: float        # 16 dictionaries, k-means++ and Lloyd
    landmark_seconds: float    # on one CPU core (rank 0 fills the landmark cache)

    @property
    def disk_bytes(self) -> int:
        return self.feature_bytes + self.landmark_bytes + self.dictionary_bytes

    def seconds(self, flops_per_second: float, ranks: int = 1) -> float:
        return self.landmark_seconds + (self.encoder_flops + self.kmeans_flops) / flops_per_second / ranks


def encoder_flops_per_view(arch: str, image_size: int) -> float:
    """Floating-point operations of one encoder pass (all four taps), counted on the meta device."""
    from torch.utils.flop_counter import FlopCounterMode

    from dfdnet.archs.vgg import VGGEncoder

    with torch.device('meta'):
        encoder = VGGEncoder(arch)
        image = torch.empty(1, 3, image_size, image_size)
    counter = FlopCounterMode(display=False)
    with counter:
        encoder(image)
    return float(counter.get_total_flops())


def make_plan(faces: int, k: int, layout: dict, flip: bool, max_rows_per_atom: int, encoder_flops: float,
              resident_bytes: float, landmarks_given: bool) -> BuildPlan:
    """The plan for ``faces`` usable faces; ``layout`` as ``feature_layout`` gives it."""
    views = 2 if flip else 1
    sampled = sample_size(faces, views, k, max_rows_per_atom)
    rows = sampled * views
    dims = [channels * side * side for _, channels, side in layout.values()]
    widest = max(dims)
    features_f32 = rows * widest * 4
    resident = features_f32 if features_f32 <= resident_bytes else 0
    # centres old and new (float32), their float64 sums and a float32 block of sums; distance blocks
    kmeans_memory = resident + k * widest * (4 + 4 + 8 + 4) + 3 * 8192 * k * 4
    trials = 2 + int(math.log(k))
    kmeans_flops = sum(2.0 * rows * k * d * KMEANS_ITERATIONS + 2.0 * rows * d * 128 + 2.0 * rows * 128 * k * trials
                       for d in dims)
    return BuildPlan(faces, sampled, rows, rows * sum(dims) * 2, faces * LANDMARK_BYTES_PER_FACE,
                     k * sum(dims) * 4, kmeans_memory, encoder_flops * rows, kmeans_flops,
                     0.0 if landmarks_given else faces * LANDMARK_SECONDS_PER_FACE)


def measure_flops_per_second(device: torch.device, size: int = 1024, seconds: float = 0.3) -> float:
    """float32 matrix-product throughput of ``device`` (a lower bound for convolutions on GPUs)."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    torch.mm(a, b)
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.mm(a, b)
        runs += 1
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    return 2.0 * size ** 3 * runs / (time.perf_counter() - start)


def format_plan(plan: BuildPlan, k: int, flops_per_second: float, device: str) -> str:
    gb = 1e9
    lines = [
        f'plan for {plan.faces:,} faces, K = {k}: a seeded sample of {plan.sampled_faces:,} faces = {plan.rows:,} rows '
        'per dictionary',
        f'disk: {plan.disk_bytes / gb:.1f} GB (feature cache {plan.feature_bytes / gb:.1f} GB float16, landmarks '
        f'{plan.landmark_bytes / gb:.3f} GB, dictionaries {plan.dictionary_bytes / gb:.2f} GB)',
        f'memory: {plan.kmeans_memory_bytes / gb:.1f} GB per process for the k-means of the widest dictionary '
        '(rows it cannot hold are streamed from the cache)',
        f'compute: encoder {plan.encoder_flops / 1e12:.0f} TFLOP, k-means {plan.kmeans_flops / 1e12:.0f} TFLOP; '
        f'landmarks {plan.landmark_seconds / 3600:.1f} h on one CPU core',
    ]
    for ranks in (1, 8):
        hours = plan.seconds(flops_per_second, ranks) / 3600
        lines.append(f'time: {hours:.1f} h on {ranks} process(es) like this {device} ({flops_per_second / 1e12:.2f} '
                     'TFLOP/s measured in float32 matrix products)')
    return '\n'.join(lines)
