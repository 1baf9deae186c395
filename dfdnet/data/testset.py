"""Paired synthetic test sets from held-out high-quality faces (paper §4 protocol, Eq. 11 preset).

Every setting is a ``DegradationConfig`` run by ``DegradationPipeline``, the implementation training
uses. For every HQ face and every setting the parameters are drawn from a generator seeded by
``(seed, setting name, image name)``, so one image's degradation does not depend on which other
images are in the set, and the same inputs and seed give byte-identical outputs.

Settings (see docs/evaluation.md):

* ``x4`` / ``x8``: I_d = (I_h ⊗ g_ρ)↓r + n_σ with r = 4 / 8, Gaussian blur ρ ∈ {1:0.1:5} pixels,
  noise σ ∈ {0:1:15} (0-255 scale), no JPEG: the SR protocol of the paper's Table 1 with the blur
  and noise ranges of Eq. 11.
* ``eq11``: the full Eq. 11, I_d = JPEG_q((I_h ⊗ k)↓r + n_σ) with k a Gaussian (ρ ∈ {1:0.1:5}) or,
  with probability 0.5, one of the motion kernels; r ∈ {1:0.1:8}, σ ∈ {0:1:15}, q ∈ {40:1:80}.
* ``clean_x2``: the face at half resolution, nothing else (a restorer must do no harm here).
* ``x4_noise_jpeg`` (noise σ ∈ {5:1:15}, JPEG q ∈ {50:1:90}, no blur) and ``x4_blur_noise_jpeg``
  (the same with Gaussian ρ ∈ {1:0.1:3}), both ×4: mixes outside Eq. 11's recipe.

Output layout (``out_dir``)::

    gt/<name>.png                    HQ face, size × size
    landmarks/<name>.png.txt         dlib 68 landmarks of the GT ("x y" rows, released format)
    <setting>/lq/<name>.png          degraded input resized back to size × size (bicubic)
    <setting>/lq_small/<name>.png    the degraded input at its low resolution
    <setting>/params.json            the parameters of the stages that ran, for every image
    manifest.json                    seed, sources, settings, files, skipped inputs
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from dfdnet.data import degradations as deg
from dfdnet.data.degradation_pipeline import PRESETS, SHIPPED_MOTION_KERNELS, DegradationConfig, DegradationPipeline
from dfdnet.data.testset_options import MakeTestsetOptions
from dfdnet.face.alignment import resize_aligned_face
from dfdnet.face.landmarks import ALIGNED_LANDMARK_PROCEDURE, aligned_face_landmarks
from dfdnet.utils.files import atomic_path
from dfdnet.utils.image_io import list_face_images, read_rgb, write_image
from dfdnet.utils.pixels import to_float01, to_uint8

logger = logging.getLogger(__name__)


# Each setting is a ``DegradationConfig``: the test set and training share one implementation.
SETTINGS = {
    'x4': DegradationConfig(motion_prob=0.0, scale=(4.0, 4.0), jpeg_prob=0.0),
    'x8': DegradationConfig(motion_prob=0.0, scale=(8.0, 8.0), jpeg_prob=0.0),
    'eq11': PRESETS['paper'],
    # A good face at half resolution: a restorer must not make it worse.
    'clean_x2': DegradationConfig(blur_prob=0.0, scale=(2.0, 2.0), noise_prob=0.0, jpeg_prob=0.0),
    # Two mixes outside Eq. 11's recipe, for robustness reports: no blur; mild blur.
    'x4_noise_jpeg': DegradationConfig(blur_prob=0.0, scale=(4.0, 4.0), noise_sigma=(5.0, 15.0),
                                       jpeg_quality=(50, 90)),
    'x4_blur_noise_jpeg': DegradationConfig(motion_prob=0.0, gaussian_sigma=(1.0, 3.0), scale=(4.0, 4.0),
                                            noise_sigma=(5.0, 15.0), jpeg_quality=(50, 90)),
}


@dataclass
class MakeTestsetReport:
    """Names written and inputs skipped (path -> reason)."""
    names: list = field(default_factory=list)
    skipped: dict = field(default_factory=dict)


def setting_rng(seed: int, setting: str, name: str) -> np.random.Generator:
    """The generator of one (setting, image): independent of the other images."""
    return np.random.default_rng([int(seed), zlib.crc32(setting.encode()), zlib.crc32(name.encode())])


def write_json(path: Path, content) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(content, indent=1, sort_keys=True))


def collect_sources(sources, report: MakeTestsetReport) -> list[tuple[str, Path]]:
    """(output name, path) of every HQ face; exact pixel duplicates across folders are skipped and a
    clashing name with different pixels is prefixed by its folder name."""
    chosen, seen_hashes, names = [], {}, set()
    for folder in map(Path, sources):
        for path in list_face_images(folder):
            try:
                digest = hashlib.sha1(read_rgb(path).tobytes()).hexdigest()
            except ValueError as exc:
                report.skipped[str(path)] = str(exc)
                logger.warning('%s', exc)
                continue
            if digest in seen_hashes:
                report.skipped[str(path)] = f'same pixels as {seen_hashes[digest]}'
                logger.info('skipping %s: same pixels as %s', path, seen_hashes[digest])
                continue
            name = path.stem if path.stem not in names else f'{folder.name}_{path.stem}'
            seen_hashes[digest] = path
            names.add(name)
            chosen.append((name, path))
    return chosen


def build_testset(options: MakeTestsetOptions, landmarker68=None) -> MakeTestsetReport:
    """Write the test set described in the module docstring; returns what was written and skipped.

    ``landmarker68``: the 68-point model of the GT landmarks (``aligned_face_landmarks``; a
    ``dfdnet.face.landmarks.DlibLandmarker(68)`` is made here when ``options.landmarks`` and None).
    ``options.settings`` None: every setting of ``SETTINGS``.
    """
    if options.settings is None:
        options = dataclasses.replace(options, settings=tuple(SETTINGS))
    out_dir = Path(options.out_dir)
    unknown = [s for s in options.settings if s not in SETTINGS]
    if unknown:
        raise ValueError(f'unknown test setting(s) {unknown}; choose from {sorted(SETTINGS)}')
    for source in map(Path, options.sources):
        if out_dir.resolve() == source.resolve() or source.resolve() in out_dir.resolve().parents:
            raise ValueError(f'output folder {out_dir} must not be (inside) the source folder {source}')
    if (out_dir / 'manifest.json').exists() and not options.overwrite:
        raise FileExistsError(f'{out_dir} already holds a test set (manifest.json); pass overwrite to replace it')

    pipelines, kernel_source = {}, None
    for setting_name in options.settings:
        config = SETTINGS[setting_name]
        if config.blur_prob > 0 and config.motion_prob > 0:
            if options.motion_kernels is not None:
                config = dataclasses.replace(config, motion_kernels=str(options.motion_kernels))
            kernel_source = config.motion_kernels or SHIPPED_MOTION_KERNELS
        pipelines[setting_name] = DegradationPipeline(config)
    if options.landmarks and landmarker68 is None:
        from dfdnet.face.landmarks import DlibLandmarker
        landmarker68 = DlibLandmarker(68)

    report = MakeTestsetReport()
    faces = collect_sources(options.sources, report)
    if options.max_images is not None:
        faces = faces[:options.max_images]
    if not faces:
        raise ValueError(f'no readable images in {[str(s) for s in options.sources]}')
    all_params = {s: {} for s in options.settings}
    for name, path in tqdm(faces, desc='test set', unit='face'):
        try:
            hq_uint8 = read_rgb(path)
            if hq_uint8.shape[:2] != (options.size, options.size):
                logger.info('%s is %dx%d: resizing to %d', path, hq_uint8.shape[1], hq_uint8.shape[0], options.size)
                hq_uint8 = resize_aligned_face(hq_uint8, options.size, enlarge='area')
        except ValueError as exc:
            report.skipped[str(path)] = str(exc)
            logger.warning('%s', exc)
            continue
        write_image(out_dir / 'gt' / f'{name}.png', hq_uint8)
        if options.landmarks:
            from dfdnet.data.landmark_cache import write_landmark_txt

            write_landmark_txt(out_dir / 'landmarks' / f'{name}.png.txt',
                               aligned_face_landmarks(np.ascontiguousarray(hq_uint8), landmarker68))
        hq = to_float01(hq_uint8)
        for setting_name in options.settings:
            sample = pipelines[setting_name](hq, setting_rng(options.seed, setting_name, name))
            small = to_uint8(sample.small)
            full = to_uint8(deg.resize(to_float01(small), size=hq.shape[:2]))
            write_image(out_dir / setting_name / 'lq_small' / f'{name}.png', small)
            write_image(out_dir / setting_name / 'lq' / f'{name}.png', full)
            all_params[setting_name][name] = sample.params
        report.names.append(name)
    for setting_name, params in all_params.items():
        write_json(out_dir / setting_name / 'params.json', params)
    write_json(out_dir / 'manifest.json', {
        'seed': options.seed, 'size': options.size,
        'sources': [str(s) for s in options.sources],
        'motion_kernels': str(kernel_source) if kernel_source else None,
        'settings': {s: dataclasses.asdict(pipelines[s].config) for s in options.settings},
        'images': report.names, 'skipped': report.skipped,
        'landmarks': f'{ALIGNED_LANDMARK_PROCEDURE} on gt' if options.landmarks else None,
    })
    logger.info('wrote %d faces x %d settings to %s (%d inputs skipped)', len(report.names),
                len(options.settings), out_dir, len(report.skipped))
    return report
