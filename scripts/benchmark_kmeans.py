"""Benchmark dfdnet's PyTorch k-means against scikit-learn on real component features.

Features: the network's component crops of the first ``--num_faces`` aligned faces of
``--faces`` (and their mirror images), from the encoder given as in build_dictionary
(``--checkpoint`` / ``--vgg`` / ``--random_encoder``), at one level (default 0: the stride-2
relu2_2 features, whose left-eye crops have 128 x 40 x 40 = 204,800 dimensions). They are
computed once and kept in ``--work`` (float16 .npy), so a second run only clusters.

Both implementations get the same float32 features, K, seed and tolerance, and the same
number of CPU threads. Example:

    python scripts/benchmark_kmeans.py --faces ../shared/data/faces_hq/celebahq_512 \
        --num_faces 500 --random_encoder 0 --k 64 128 --work /tmp/kmeans_bench
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dfdnet.data.landmark_cache import LandmarkCache  # noqa: E402
from dfdnet.dictionary.faces import FaceOptions, compute_landmarks, list_face_images, load_aligned_face  # noqa: E402
from dfdnet.dictionary.features import (crop_components, encode_levels, feature_layout,  # noqa: E402
                                        image_to_tensor, load_encoder)
from dfdnet.face.components import PART_NAMES, component_boxes, flip_landmarks  # noqa: E402

logger = logging.getLogger('benchmark_kmeans')


def extract(args, work: Path) -> dict:
    """{part: float16 (n, D) array} of level ``args.level`` for the first num_faces faces (+ mirrors)."""
    encoder, config, info = load_encoder(args.checkpoint, args.vgg, args.random_encoder)
    layout = {k: v for k, v in feature_layout(config).items() if v[0] == args.level}
    paths = {part: work / f'{part}_{fsize}.npy' for part, fsize in layout}
    if all(p.is_file() for p in paths.values()):
        return {part: np.load(p, mmap_mode='r') for part, p in paths.items()}
    root = Path(args.faces)
    images = list_face_images(root)[:int(args.num_faces * 1.2) + 10]
    cache = LandmarkCache.load_or_new(work / 'landmarks.npz', root)
    compute_landmarks(images, root, cache, work / 'landmarks.npz', FaceOptions(), max_faces=args.num_faces)
    entries = sorted(cache.entries('ok'), key=lambda e: e.path)[:args.num_faces]
    rows = {part: [] for part in PART_NAMES}
    started = time.time()
    with torch.no_grad():
        for n, entry in enumerate(entries):
            face = load_aligned_face(root, entry, config.image_size, align=False)
            image = image_to_tensor(face)
            batch = torch.stack([image, image.flip(-1)])
            boxes = torch.as_tensor(np.stack([component_boxes(entry.landmarks),
                                              component_boxes(flip_landmarks(entry.landmarks, config.image_size))]))
            taps = encode_levels(encoder, batch, args.level + 1)
            for (part, _), (crops, valid) in crop_components(taps, boxes, config).items():
                if _ == config.image_size // 2 ** (args.level + 1) and bool(valid.all()):
                    rows[part].append(crops.flatten(1).half().numpy())
            if n % 50 == 0:
                logger.info('features: %d / %d faces, %.1f s', n, len(entries), time.time() - started)
    for (part, fsize) in layout:
        np.save(paths[part], np.concatenate(rows[part]))
    (work / 'features.json').write_text(json.dumps({'encoder': info.to_dict(), 'faces': len(entries),
                                                    'seconds': time.time() - started}, indent=1))
    return {part: np.load(p, mmap_mode='r') for part, p in paths.items()}


def timed(repeat: int, run):
    """(fastest wall time over ``repeat`` runs, last result)."""
    best, result = float('inf'), None
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def print_summary(results: list) -> None:
    """One line per (part, K): times summed and inertia ratio averaged over the seeds."""
    print(f'{"part":9} {"N":>5} {"D":>7} {"K":>4} {"seeds":>5} {"ours s":>7} {"fp16 memmap s":>13} '
          f'{"sklearn s":>9} {"speedup":>7} {"inertia ours/sk":>15} {"range":>15}')
    groups = {}
    for r in results:
        groups.setdefault((r['part'], r['k']), []).append(r)
    for (part, k), rows in groups.items():
        ours, mm, sk = (sum(r[key] for r in rows) for key in ('ours_s', 'ours_memmap_fp16_s', 'sklearn_s'))
        ratio = sum(r['ours_inertia'] for r in rows) / sum(r['sklearn_inertia'] for r in rows)
        low, high = min(r['inertia_ratio'] for r in rows), max(r['inertia_ratio'] for r in rows)
        print(f'{part:9} {rows[0]["n"]:5d} {rows[0]["dim"]:7d} {k:4d} {len(rows):5d} {ours:7.1f} {mm:13.1f} '
              f'{sk:9.1f} {sk / ours:7.2f} {ratio:15.4f} {low:7.3f}-{high:.3f}')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--faces', required=True)
    parser.add_argument('--num_faces', type=int, default=500)
    parser.add_argument('--level', type=int, default=0, choices=range(4))
    parser.add_argument('--parts', nargs='+', default=['left_eye', 'nose'], choices=PART_NAMES)
    parser.add_argument('--k', type=int, nargs='+', default=[64, 128])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0])
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--repeat', type=int, default=1, help='time each run this many times, keep the fastest')
    parser.add_argument('--max_iter', type=int, default=100)
    parser.add_argument('--tol', type=float, default=1e-4)
    parser.add_argument('--device', default=None, help='torch device for ours (default: CUDA if available)')
    parser.add_argument('--work', required=True, help='folder for the cached features and the results')
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--checkpoint')
    source.add_argument('--vgg')
    source.add_argument('--random_encoder', type=int)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(message)s')
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    features = extract(args, work)

    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    from dfdnet.dictionary.kmeans import kmeans

    results = []
    for part in args.parts:
        x16 = features[part]
        x = np.asarray(x16, dtype=np.float32)
        for k in args.k:
            for seed in args.seeds:
                t_ours, ours = timed(args.repeat, lambda: kmeans(x, k, seed=seed, max_iter=args.max_iter,
                                                                tol=args.tol, device=args.device))
                t_mm, ours_mm = timed(args.repeat, lambda: kmeans(x16, k, seed=seed, max_iter=args.max_iter,
                                                                  tol=args.tol, device=args.device,
                                                                  max_resident_bytes=0))
                with threadpool_limits(args.threads):
                    t_sk, sk = timed(args.repeat, lambda: KMeans(k, init='k-means++', n_init=1, random_state=seed,
                                                                 max_iter=args.max_iter, tol=args.tol,
                                                                 algorithm='lloyd').fit(x))
                row = {'part': part, 'n': int(x.shape[0]), 'dim': int(x.shape[1]), 'k': k, 'seed': seed,
                       'ours_s': round(t_ours, 2), 'ours_memmap_fp16_s': round(t_mm, 2), 'sklearn_s': round(t_sk, 2),
                       'ours_inertia': ours.inertia, 'ours_memmap_inertia': ours_mm.inertia,
                       'sklearn_inertia': float(sk.inertia_), 'inertia_ratio': ours.inertia / float(sk.inertia_),
                       'ours_iter': ours.n_iter, 'sklearn_iter': int(sk.n_iter_), 'speedup': t_sk / t_ours}
                results.append(row)
                print(json.dumps(row), flush=True)
    meta = {'threads': args.threads, 'repeat': args.repeat,
            'device': str(args.device or ('cuda' if torch.cuda.is_available() else 'cpu')),
            'torch': torch.__version__, 'results': results}
    (work / 'benchmark.json').write_text(json.dumps(meta, indent=1))
    print_summary(results)
    return 0


if __name__ == '__main__':
    sys.exit(main())
