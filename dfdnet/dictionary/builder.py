"""Build DFDNet's multi-scale component dictionaries from a folder of high-quality faces.

Stages (each resumable): 68 landmarks per aligned face (``landmarks.npz``), component features
of the frozen encoder at the four levels (float16 memmaps), K-means per part and level. The
output is the released layout, ``{part}_{feature size}_center.npy`` float32 (K, C, s, s),
plus ``dictionary.json``.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from dfdnet.archs.dictionary import dictionary_file_name
from dfdnet.data.folder_landmarks import compute_landmarks
from dfdnet.data.landmark_cache import LandmarkCache
from dfdnet.dictionary.faces import list_dictionary_images, load_aligned_face
from dfdnet.dictionary.feature_store import FeatureStore, samples_hash
from dfdnet.dictionary.features import extract_samples, feature_layout, file_sha256, load_encoder
from dfdnet.dictionary.kmeans import kmeans
from dfdnet.dictionary.options import BuildOptions
from dfdnet.dictionary.sharding import (DictionaryBuildError, features_across_shards, my_keys, my_share, sample_entries,
                                        shard_folder, together)
from dfdnet.errors import UnreadableFileError
from dfdnet.face.landmarks import ALIGNED_LANDMARK_PROCEDURE
from dfdnet.utils.distributed import DistInfo, rank_device
from dfdnet.utils.files import atomic_path, check_npy, read_json
from dfdnet.utils.image_io import ImageReadError
from dfdnet.utils.precision import resolve_precision

logger = logging.getLogger(__name__)

COMMIT_EVERY = 8  # batches between two commits of the feature cache


@dataclass
class BuildSummary:
    output: Path
    k: int
    faces_used: int
    samples: int
    skipped: list = field(default_factory=list)   # (path, face index, reason)
    seconds: dict = field(default_factory=dict)


def memory_estimate(layout: dict, samples: int, k: int, chunk_mb: int) -> dict:
    """Bytes a build needs: float16 feature cache on disk, and the largest k-means working set
    besides the features themselves (when those are resident on the device)."""
    dims = {key: c * s * s for key, (_, c, s) in layout.items()}
    disk = sum(samples * d * 2 for d in dims.values())
    largest = max(dims.values())
    rows = max(1, chunk_mb * 2**20 // (largest * 4))
    # a block as read (float16) and in float32; centres (float32, old and new), their float64
    # sums and one block's float32 sums; the block's (rows, K) distances and their temporaries
    working = rows * largest * (2 + 4) + k * largest * (4 + 4 + 8 + 4) + 3 * rows * k * 4
    return {'feature_cache_bytes': disk, 'largest_dimension': largest,
            'largest_features_bytes': samples * largest * 2, 'kmeans_working_bytes': working}


def _select_samples(cache: LandmarkCache, images: list, max_faces):
    """Usable entries of the listed images (sorted) and the (path, face, reason) of the others."""
    listed = {cache.relative(p) for p in images}
    entries = sorted((e for e in cache if e.path in listed), key=lambda e: (e.path, e.face_index))
    usable = [e for e in entries if e.ok]
    skipped = [(e.path, e.face_index, e.flag) for e in entries if not e.ok]
    if max_faces is not None:
        usable = usable[:int(max_faces)]
    return usable, skipped


def _extract_features(store: FeatureStore, entries, root: Path, options: BuildOptions, encoder, config, device):
    """Fill the feature store for the samples not done yet; returns [(path, face, reason)] of failures."""
    todo = [i for i in range(len(entries)) if not store.done[i]]
    failures = []
    bar = tqdm(total=len(todo), desc='features', unit='face')
    batches = [todo[i:i + options.batch_size] for i in range(0, len(todo), options.batch_size)]
    try:
        for count, batch in enumerate(batches, start=1):
            _extract_batch(store, entries, batch, root, options, encoder, config, device, failures)
            bar.update(len(batch))
            if count % COMMIT_EVERY == 0:
                store.commit()
    finally:  # also on Ctrl-C: every sample marked done is complete on disk
        store.commit()
    bar.close()
    if store.overflowed:
        logger.warning('%d feature rows exceeded the float16 range and were clipped', store.overflowed)
    return failures


def _extract_batch(store, entries, batch, root, options, encoder, config, device, failures) -> None:
    faces, points, indices = [], [], []
    for i in batch:
        try:
            faces.append(load_aligned_face(root, entries[i], config.image_size, options.align))
        except (ImageReadError, ValueError) as exc:
            logger.warning('skipping %s face %d: %s', entries[i].path, entries[i].face_index, exc)
            failures.append((entries[i].path, entries[i].face_index, f'unreadable: {exc}'))
            continue
        points.append(entries[i].landmarks)
        indices.append(i)
    if not indices:
        return
    samples = extract_samples(encoder, faces, points, config, options.flip, device, precision=options.precision)
    views = store.views
    for j, i in enumerate(indices):
        for v in range(views):
            store.write(i, v, {key: (crops[j * views + v], valid[j * views + v])
                               for key, (crops, valid) in samples.items()})
        store.mark_done(i)


def _read_records(path: Path) -> dict:
    """The clustering record ({name: signature, stats, sha256}); {} when missing or unreadable (logged)."""
    if not path.is_file():
        return {}
    try:
        records = read_json(path, 'clustering record')
    except UnreadableFileError as exc:
        logger.warning('%s: clustering every dictionary again', exc)
        return {}
    if not isinstance(records, dict) or not all(isinstance(r, dict) for r in records.values()):
        logger.warning('%s: not a clustering record: clustering every dictionary again', path)
        return {}
    return records


def _reusable(previous, signature: dict, target: Path, shape: tuple, record_path: Path) -> bool:
    """True when ``target`` was clustered from these features and is intact (header, size and
    sha256 as recorded); a damaged file is logged and clustered again."""
    if not previous or previous.get('signature') != signature or 'stats' not in previous:
        return False
    try:
        check_npy(target, shape, np.float32, 'dictionary file')
        recorded = previous.get('sha256')
        if file_sha256(target) != recorded:
            where = 'differs from the one in' if recorded else 'is not in'
            raise UnreadableFileError(f'{target}: its sha256 {where} {record_path}')
    except UnreadableFileError as exc:
        logger.warning('%s: clustering it again', exc)
        return False
    return True


def _cluster(features_of, signature: dict, keys: list, options: BuildOptions, layout: dict, out: Path,
             record_path: Path, device) -> dict:
    """K-means of ``keys`` (part, level), each of the rows ``features_of(key)``; writes their centre
    files. Returns per-key statistics."""
    records = _read_records(record_path)
    signature = dict(signature, k=options.k, seed=options.seed, output=str(out.resolve()), kmeans=vars(options.kmeans))
    stats = {}
    for key in tqdm(keys, desc='clustering', unit='dict'):
        part, fsize = key
        name = dictionary_file_name(part, fsize)
        _, channels, side = layout[key]
        target = out / name
        previous = records.get(name)
        if _reusable(previous, signature, target, (options.k, channels, side, side), record_path):
            stats[name] = previous['stats']
            logger.info('%s: already clustered, reused', name)
            continue
        features = features_of(key)
        if features.shape[0] < options.k:
            raise DictionaryBuildError(f'K={options.k} is larger than the {features.shape[0]} usable {part} crops at '
                                       f'feature size {fsize}: use a smaller --k or more faces')
        chunk = max(1, options.kmeans.chunk_mb * 2**20 // (features.shape[1] * 4)) if options.kmeans.chunk_mb else None
        started = time.time()
        result = kmeans(features, options.k, seed=options.seed, max_iter=options.kmeans.max_iter,
                        tol=options.kmeans.tol, chunk_size=chunk, device=device,
                        max_resident_bytes=int(options.kmeans.resident_gb * 2**30), progress=True, desc=name,
                        backend=options.kmeans.backend, inertia_tol=options.kmeans.inertia_tol,
                        init_dims=options.kmeans.init_dims)
        centres = result.centers.numpy().astype(np.float32).reshape(options.k, channels, side, side)
        with atomic_path(target) as tmp:
            with open(tmp, 'wb') as fh:
                np.save(fh, centres)
        sizes = np.bincount(result.labels.numpy(), minlength=options.k)
        stats[name] = {'samples': int(features.shape[0]), 'inertia': result.inertia, 'iterations': result.n_iter,
                       'backend': result.backend, 'device': str(result.device),
                       'converged': result.converged, 'seconds': round(time.time() - started, 3),
                       'cluster_size_min': int(sizes.min()), 'cluster_size_max': int(sizes.max())}
        records[name] = {'signature': signature, 'stats': stats[name], 'sha256': file_sha256(target)}
        with atomic_path(record_path) as tmp:
            tmp.write_text(json.dumps(records, indent=1))
    return stats


def build_dictionary(options: BuildOptions, info: DistInfo | None = None) -> BuildSummary:
    """Run the whole build; see the module docstring. Raises ``DictionaryBuildError`` with the reason.

    info: this process's torchrun rank (default: a single process); the ranks share the feature
    extraction (contiguous shares of the sample) and the 16 k-means, then rank 0 writes dictionary.json.
    """
    options.validate()
    info = info or DistInfo()
    started = time.time()
    seconds = {}
    device = torch.device(rank_device(info, options.device))
    encoder, config, encoder_info = load_encoder(options.checkpoint, options.vgg, options.random_encoder,
                                                 options.encoder)
    encoder.to(device)
    options = dataclasses.replace(options, precision=resolve_precision(options.precision, device))
    root = Path(options.input)
    out = Path(options.output)
    cache_dir = options.cache_folder()
    if not root.is_dir():
        raise DictionaryBuildError(f'input folder not found: {root}')
    images = list_dictionary_images(root)
    if not images:
        raise DictionaryBuildError(f'no images found under {root}')
    faces_opts = options.faces
    faces_opts.face_size = config.image_size
    landmark_path = options.landmark_cache_path()
    cache = LandmarkCache.load_or_new(landmark_path, root, config.image_size,
                                      'txt' if options.landmarks_dir else ALIGNED_LANDMARK_PROCEDURE)
    t0 = time.time()
    if info.is_main:  # one landmark cache, filled by rank 0; the other ranks read it after the barrier
        together(info, lambda: compute_landmarks(images, root, cache, landmark_path, faces_opts, options.max_faces,
                                                 options.landmarks_dir))
    else:
        together(info, lambda: None)
        cache = LandmarkCache.load_or_new(landmark_path, root, config.image_size,
                                          'txt' if options.landmarks_dir else ALIGNED_LANDMARK_PROCEDURE)
    seconds['landmarks'] = time.time() - t0
    entries, skipped = _select_samples(cache, images, options.max_faces)
    for path, index, reason in skipped:
        logger.info('skipped %s (face %d): %s', path, index, reason)
    views = 2 if options.flip else 1
    if not entries:
        raise DictionaryBuildError(f'no usable face under {root}: {len(skipped)} image(s) skipped '
                                   f'(no face or no landmarks); see the log')
    if options.k > len(entries) * views:
        raise DictionaryBuildError(f'K={options.k} is larger than the number of usable crops per part and level: '
                                   f'{len(entries)} faces x {views} view(s) = {len(entries) * views}; '
                                   'use a smaller --k or more faces')
    entries = sample_entries(entries, views, options.k, options.max_rows_per_atom, options.seed)
    layout = feature_layout(config)
    chunk_mb = options.kmeans.chunk_mb or (1024 if device.type == 'cuda' else 32)
    need = memory_estimate(layout, len(entries) * views, options.k, chunk_mb)
    logger.info('%d sampled faces x %d views; feature cache %.2f GB on disk; largest k-means features %.2f GB '
                '(float16), working set %.2f GB', len(entries), views, need['feature_cache_bytes'] / 1e9,
                need['largest_features_bytes'] / 1e9, need['kmeans_working_bytes'] / 1e9)
    sample_sha256 = samples_hash([f'{e.path}#{e.face_index}' for e in entries])
    entries = my_share(entries, info)
    keys = [f'{e.path}#{e.face_index}' for e in entries]
    manifest = {'encoder_sha256': encoder_info.weights_sha256, 'image_size': config.image_size,
                'part_sizes': list(config.part_sizes), 'flip': options.flip, 'align': options.align,
                'samples_sha256': samples_hash(keys), 'landmarks_sha256': samples_hash(
                    [np.asarray(e.landmarks, dtype=np.float32).tobytes().hex() for e in entries])}
    if options.precision != 'fp32':  # features of another precision are not reused (fp32 caches stay valid)
        manifest['precision'] = options.precision
    t0 = time.time()
    store = FeatureStore(shard_folder(cache_dir, info), len(entries), views, layout, manifest)
    failures = together(info, lambda: _extract_features(store, entries, root, options, encoder, config, device))
    seconds['features'] = time.time() - t0
    shares = info.all_gather({'manifest': store.manifest, 'done': int(store.done.sum()), 'failures': failures})
    t0 = time.time()
    out.mkdir(parents=True, exist_ok=True)
    signature = {'features': [s['manifest'] for s in shares], 'done': sum(s['done'] for s in shares),
                 'sample_sha256': sample_sha256}
    record_name = 'clustering.json' if not info.enabled else f'clustering_{info.rank}of{info.world_size}.json'
    record_path = cache_dir / record_name
    stats = together(info, lambda: _cluster(
        lambda key: features_across_shards(cache_dir, info, key, list(layout), views), signature,
        my_keys(list(layout), info), options, layout, out, record_path, device))
    stats = {name: value for part in info.all_gather(stats) for name, value in part.items()}
    seconds['clustering'] = time.time() - t0
    seconds['total'] = time.time() - started
    faces_used = signature['done']
    failures = [f for s in shares for f in s['failures']]
    summary = BuildSummary(out, options.k, faces_used, faces_used * views, skipped + failures, seconds)
    if info.is_main:
        _write_metadata(out / 'dictionary.json', options, config, encoder_info, summary, stats, landmark_path,
                        device, info.world_size)
    info.barrier()
    return summary


def _write_metadata(path: Path, options, config, encoder_info, summary: BuildSummary, stats, landmark_path, device,
                    ranks: int = 1):
    meta = {
        'format': 'dfdnet-dictionary', 'version': 1, 'K': options.k,
        'faces_used': summary.faces_used, 'samples_per_dictionary': summary.samples,
        'flip_augmentation': options.flip, 'skipped': [list(s) for s in summary.skipped],
        'random_encoder': encoder_info.is_random, 'encoder': encoder_info.to_dict(),
        'image_size': config.image_size, 'part_sizes': list(config.part_sizes),
        'layout': {dictionary_file_name(p, f): [options.k, c, s, s]
                   for (p, f), (_, c, s) in feature_layout(config).items()},
        'seed': options.seed, 'options': options.to_dict(), 'landmark_cache': str(landmark_path),
        'device': str(device), 'ranks': ranks, 'seconds': {k: round(v, 2) for k, v in summary.seconds.items()},
        'kmeans': stats, 'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        'torch': torch.__version__,
    }
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(meta, indent=1))
