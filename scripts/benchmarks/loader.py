"""Measure the training data loader alone (read, flip, degrade, collate) in samples/s.

    PYTHONPATH=. python scripts/benchmarks/loader.py -opt options/train_smoke.yml --num_workers 2 --batches 20

Uses the options' training faces, landmarks (a cache or folder; or detects them into --landmark_cache),
degradation, batch size and loader settings; --set overrides work as in train.py.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path


from dfdnet.data.degradation_pipeline import DegradationPipeline
from dfdnet.data.face_dataset import EpochSampler, FaceDataset, build_train_loader, \
    load_landmarks, split_train_val
from dfdnet.utils.image_io import list_face_images
from dfdnet.models.options import parse_options


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-opt', '--opt', required=True, help='training options YAML')
    parser.add_argument('--set', dest='overrides', action='append', default=[], metavar='KEY=VALUE')
    parser.add_argument('--num_workers', type=int, default=None, help='override train_data.num_workers')
    parser.add_argument('--batches', type=int, default=20, help='batches to time (after 2 warm-up batches)')
    parser.add_argument('--landmark_cache', type=Path, default=Path('experiments/benchmark_landmarks.npz'),
                        help='where detected landmarks are cached when the options give no landmark source')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    options, _ = parse_options(args.opt, args.overrides)
    data = options.train_data
    workers = data.num_workers if args.num_workers is None else args.num_workers
    train_files, _ = split_train_val(list_face_images(data.hq_folder), data.val_count, data.max_images)
    landmarks = load_landmarks(train_files, data.landmarks, data.landmark_size, args.landmark_cache)
    dataset = FaceDataset([f for f in train_files if f in landmarks], landmarks, options.generator.image_size,
                          DegradationPipeline(data.degradation), data.flip_prob, options.manual_seed,
                          data.landmark_size)
    sampler = EpochSampler(dataset, seed=options.manual_seed)
    loader = build_train_loader(dataset, sampler, data.batch_size, workers, data.pin_memory,
                                persistent_workers=workers > 0, prefetch_factor=data.prefetch_factor)
    warmup, seen, epoch = 2, 0, 0
    start = None
    while seen < args.batches + warmup:
        sampler.set_epoch(epoch)
        for _batch in loader:
            seen += 1
            if seen == warmup:
                start = time.perf_counter()
            if seen >= args.batches + warmup:
                break
        epoch += 1
    elapsed = time.perf_counter() - start
    rate = args.batches * data.batch_size / elapsed
    print(f'{rate:.1f} samples/s ({args.batches} batches of {data.batch_size}, {options.generator.image_size} px, '
          f'{workers} workers, {len(dataset)} faces, degradation from {args.opt})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
