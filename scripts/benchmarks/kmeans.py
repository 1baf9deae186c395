"""Benchmark dfdnet's k-means (torch and faiss backends) against scikit-learn.

Features: given .npy arrays (``--features``), synthetic (``--synthetic N D``: Gaussian blobs, see ``synthetic``) or the
network's component crops of the first ``--num_faces`` aligned faces of ``--faces`` (and their
mirror images), from the encoder given as in build_dictionary (``--checkpoint`` / ``--vgg`` /
``--random_encoder``), at one level (default 0: the stride-2 relu2_2 features, whose left-eye
crops have 128 x 40 x 40 = 204,800 dimensions). Face features are computed once and kept in
``--work`` (float16 .npy), so a second run only clusters.

Every implementation gets the same float32 features, K, seed, max_iter and tolerance, and the
same number of CPU threads (torch, faiss's OpenMP and scikit-learn's pools): scikit-learn's
``KMeans(init='k-means++', n_init=1, algorithm='lloyd')``, ``kmeans(backend='torch')``,
``kmeans(backend='faiss')`` when faiss is installed, and with ``--memmap`` the torch backend
streaming a float16 .npy from disk at every pass. Examples:

    PYTHONPATH=. python scripts/benchmarks/kmeans.py --synthetic 20000 512 --k 64 --seeds 0 1 --work /tmp/kmeans_bench
    PYTHONPATH=. python scripts/benchmarks/kmeans.py --faces ../shared/data/faces_hq/celebahq_512 \
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


from dfdnet.data.landmark_cache import LandmarkCache
from dfdnet.face.landmarks import ALIGNED_LANDMARK_PROCEDURE
from dfdnet.data.folder_landmarks import FaceOptions, compute_landmarks
from dfdnet.dictionary.faces import list_dictionary_images, load_aligned_face
from dfdnet.dictionary.features import crop_components, encode_levels, feature_layout, load_encoder
from dfdnet.utils.pixels import to_network
from dfdnet.face.components import PART_NAMES, component_boxes, flip_landmarks

logger = logging.getLogger('benchmark_kmeans')


def extract(args, work: Path) -> dict:
    """{part: float16 (n, D) array} of level ``args.level`` for the first num_faces faces (+ mirrors)."""
    encoder, config, info = load_encoder(args.checkpoint, args.vgg, args.random_encoder)
    layout = {k: v for k, v in feature_layout(config).items() if v[0] == args.level}
    paths = {part: work / f'{part}_{fsize}.npy' for part, fsize in layout}
    if all(p.is_file() for p in paths.values()):
        return {part: np.load(p, mmap_mode='r') for part, p in paths.items()}
    root = Path(args.faces)
    images = list_dictionary_images(root)[:int(args.num_faces * 1.2) + 10]
    cache = LandmarkCache.load_or_new(work / 'landmarks.npz', root, 512, ALIGNED_LANDMARK_PROCEDURE)
    compute_landmarks(images, root, cache, work / 'landmarks.npz', FaceOptions(), max_faces=args.num_faces)
    entries = sorted(cache.entries('ok'), key=lambda e: e.path)[:args.num_faces]
    rows = {part: [] for part in PART_NAMES}
    started = time.time()
    with torch.no_grad():
        for n, entry in enumerate(entries):
            face = load_aligned_face(root, entry, config.image_size, align=False)
            image = to_network(face)
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


def synthetic(args) -> dict:
    """{name: float32 (N, D)} Gaussian blobs: ``--clusters`` centres drawn from N(0, separation^2)
    plus N(0, 1) noise, dimension d scaled by (d + 1)^-decay (decay 0: isotropic, well separated
    blobs; 0.5: a decaying spectrum and overlapping blobs, closer to CNN features), plus 3 (a
    large mean, as non-negative features have)."""
    n, dim = args.synthetic
    rng = np.random.default_rng(args.data_seed)
    centres = args.separation * rng.standard_normal((args.clusters, dim))
    x = centres[rng.integers(0, args.clusters, n)] + rng.standard_normal((n, dim))
    x *= np.arange(1, dim + 1) ** -args.decay
    name = f'blobs{args.clusters}-sep{args.separation:g}-decay{args.decay:g}'
    return {name: (x + 3.0).astype(np.float32)}


def timed(repeat: int, run):
    """(fastest wall time over ``repeat`` runs, last result)."""
    best, result = float('inf'), None
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def print_summary(results: list, threads: int) -> None:
    """A markdown table, one line per (features, K, implementation): times summed over the seeds,
    speed-up = scikit-learn's time / this one's, inertia = this one's / scikit-learn's."""
    print('| features | N | D | K | threads | seeds | implementation | s | speed-up vs sklearn | '
          'inertia / sklearn (sum; per seed) | iterations |')
    print('|---|---|---|---|---|---|---|---|---|---|---|')
    groups = {}
    for r in results:
        groups.setdefault((r['part'], r['k']), []).append(r)
    for (part, k), rows in groups.items():
        sk_time = sum(r['sklearn']['s'] for r in rows)
        sk_inertia = sum(r['sklearn']['inertia'] for r in rows)
        print(f'| {part} | {rows[0]["n"]:,} | {rows[0]["dim"]:,} | {k} | {threads} | {len(rows)} | scikit-learn | '
              f'{sk_time:.2f} | 1 | 1 | {"/".join(str(r["sklearn"]["n_iter"]) for r in rows)} |')
        for impl in rows[0]['runs']:
            runs = [r['runs'][impl] for r in rows]
            took = sum(run['s'] for run in runs)
            ratios = [run['inertia'] / r['sklearn']['inertia'] for run, r in zip(runs, rows)]
            ratio = sum(run['inertia'] for run in runs) / sk_inertia
            spread = f'{min(ratios):.4f}–{max(ratios):.4f}' if len(ratios) > 1 else f'{ratios[0]:.4f}'
            iters = '/'.join(str(run['n_iter']) for run in runs)
            print(f'| {part} | {rows[0]["n"]:,} | {rows[0]["dim"]:,} | {k} | {threads} | {len(rows)} | {impl} | '
                  f'{took:.2f} | {sk_time / took:.2f}× | {ratio:.4f} ({spread}) | {iters} |')


def run_one(x, x16, k: int, seed: int, args, kmeans, implementations: dict) -> dict:
    """Time scikit-learn and each implementation ({label: (backend, streamed from the float16
    file, inertia_tol)}) on the same features and seed."""
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    with threadpool_limits(args.threads):
        t_sk, sk = timed(args.repeat, lambda: KMeans(k, init='k-means++', n_init=1, random_state=seed,
                                                     max_iter=args.max_iter, tol=args.tol, algorithm='lloyd').fit(x))
    row = {'n': int(x.shape[0]), 'dim': int(x.shape[1]), 'k': k, 'seed': seed,
           'sklearn': {'s': round(t_sk, 3), 'inertia': float(sk.inertia_), 'n_iter': int(sk.n_iter_)}, 'runs': {}}
    for impl, (backend, streamed, inertia_tol) in implementations.items():
        took, result = timed(args.repeat, lambda: kmeans(x16 if streamed else x, k, seed=seed, max_iter=args.max_iter,
                                                         tol=args.tol, device=args.device,
                                                         max_resident_bytes=0 if streamed else 2**40,
                                                         backend=backend, inertia_tol=inertia_tol,
                                                         init_dims=args.init_dims))
        row['runs'][impl] = {'s': round(took, 3), 'inertia': result.inertia, 'n_iter': result.n_iter,
                             'backend': result.backend, 'device': result.device}
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--synthetic', type=int, nargs=2, metavar=('N', 'D'),
                        help='cluster synthetic blobs of N rows and D dimensions instead of face features')
    parser.add_argument('--clusters', type=int, default=100, help='--synthetic: number of blobs')
    parser.add_argument('--separation', type=float, default=1.5, help='--synthetic: spread of the blob centres')
    parser.add_argument('--decay', type=float, default=0.0, help='--synthetic: spectrum decay exponent')
    parser.add_argument('--data_seed', type=int, default=0, help='--synthetic: seed of the features')
    parser.add_argument('--features', nargs='+', metavar='NPY',
                        help='cluster these (N, D) .npy arrays, e.g. the feature files of a complete '
                             "dictionary build's cache (<output>_cache/features/<part>_<size>.npy)")
    parser.add_argument('--faces')
    parser.add_argument('--num_faces', type=int, default=500)
    parser.add_argument('--level', type=int, default=0, choices=range(4))
    parser.add_argument('--parts', nargs='+', default=['left_eye', 'nose'], choices=PART_NAMES)
    parser.add_argument('--k', type=int, nargs='+', default=[64, 128])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0])
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--repeat', type=int, default=1, help='time each run this many times, keep the fastest')
    parser.add_argument('--max_iter', type=int, default=100)
    parser.add_argument('--tol', type=float, default=1e-4)
    parser.add_argument('--init_dims', type=int, default=128, help='kmeans(init_dims=...) for every run of ours')
    parser.add_argument('--inertia_tol', type=float, nargs='+', default=[],
                        help="also time each backend with kmeans(inertia_tol=...) at these values")
    parser.add_argument('--device', default='cpu', help="torch device for ours (default 'cpu', as scikit-learn)")
    parser.add_argument('--memmap', action='store_true', help='also time the torch backend streaming float16 from disk')
    parser.add_argument('--work', required=True, help='folder for the cached features and the results')
    source = parser.add_mutually_exclusive_group()
    source.add_argument('--checkpoint')
    source.add_argument('--vgg')
    source.add_argument('--random_encoder', type=int)
    args = parser.parse_args(argv)
    if not args.synthetic and not args.features and not (
            args.faces and (args.checkpoint or args.vgg or args.random_encoder is not None)):
        parser.error('give --synthetic N D, --features NPY, or --faces with one of --checkpoint / --vgg / '
                     '--random_encoder')
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(message)s')
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    if args.features:
        features = {Path(f).stem: np.load(f, mmap_mode='r') for f in args.features}
    else:
        features = synthetic(args) if args.synthetic else extract(args, work)

    from dfdnet.dictionary.kmeans import _import_faiss, kmeans

    faiss = _import_faiss()
    backends = ['torch'] + (['faiss'] if faiss else [])
    implementations = {b: (b, False, 0.0) for b in backends}
    implementations.update({f'{b} inertia_tol={t:g}': (b, False, t) for b in backends for t in args.inertia_tol})
    if args.memmap:
        implementations['torch fp16 memmap'] = ('torch', True, 0.0)
    if faiss:
        faiss.omp_set_num_threads(args.threads)
    else:
        logger.warning('faiss is not installed: only the torch backend is timed')
    results = []
    for part, stored in features.items():
        x = np.asarray(stored, dtype=np.float32)
        x16 = stored
        if args.memmap and stored.dtype != np.float16:
            np.save(work / f'{part}_fp16.npy', x.astype(np.float16))
            x16 = np.load(work / f'{part}_fp16.npy', mmap_mode='r')
        for k in args.k:
            for seed in args.seeds:
                row = dict(part=part, **run_one(x, x16, k, seed, args, kmeans, implementations))
                results.append(row)
                print(json.dumps(row), flush=True)
    meta = {'threads': args.threads, 'init_dims': args.init_dims, 'repeat': args.repeat, 'device': args.device, 'torch': torch.__version__,
            'faiss': getattr(faiss, '__version__', None), 'argv': sys.argv[1:], 'results': results}
    (work / 'benchmark.json').write_text(json.dumps(meta, indent=1))
    print_summary(results, args.threads)
    return 0


if __name__ == '__main__':
    sys.exit(main())
