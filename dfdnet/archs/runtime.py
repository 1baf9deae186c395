"""The generator on other runtimes (OpenVINO, onnxruntime), converted once and cached.

``load_runtime`` returns a callable ``g(images, boxes)`` like the torch model: images (B, 3, S, S)
float32 in [-1, 1], boxes (B, 4, 4) ``[x1, y1, x2, y2]`` of the left eye, right eye, nose and mouth
in S-px pixels; it returns a (B, 3, S, S) float32 tensor on the CPU. The converted model is the
ONNX graph of ``dfdnet.archs.onnx_export`` (one forward for every backend) and, for OpenVINO, its
IR; both are cached under ``runtime_cache_dir()`` in a folder named by a key of the weights'
fingerprints, the precision's graph (always float32: the precision is a compile setting) and the
backend's version. A conversion times the converted model and the torch one on the same faces and
records it; ``backend='auto'`` picks the faster of the recorded ones (torch when none is recorded).
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from dfdnet.archs.dfdnet_arch import GeneratorConfig
from dfdnet.pipeline.options import BACKENDS
from dfdnet.archs.onnx_export import compare, example_inputs, export_onnx, export_openvino, require
from dfdnet.utils.cache import cache_folder, file_fingerprint
from dfdnet.utils.files import atomic_directory, atomic_path

logger = logging.getLogger(__name__)

CACHE_FORMAT = 1
MAX_CONVERSION_DIFF_255 = 3.0  # a converted float32 model further than this from torch is refused
_OPENVINO_PRECISION = {'fp32': 'f32', 'bf16': 'bf16', 'fp16': 'f16'}


def runtime_cache_dir(override=None) -> Path:
    """The runtime cache: ``override``, else ``<cache root>/runtime`` (``dfdnet.utils.cache``:
    ``$DFDNET_CACHE``, else ``$XDG_CACHE_HOME/dfdnet``, default ``~/.cache/dfdnet``)."""
    return cache_folder('runtime', override)


def _weight_files(checkpoint, dict_dir, sharp_checkpoint) -> list:
    files = [Path(checkpoint)] + ([Path(sharp_checkpoint)] if sharp_checkpoint else [])
    dict_dir = Path(dict_dir)
    files += sorted(dict_dir.glob('*.npy')) if dict_dir.is_dir() else [dict_dir]
    return files


def backend_version(backend: str) -> str:
    """The installed version of ``backend``'s package (read without importing it); ImportError if missing."""
    try:
        return importlib.metadata.version(backend)
    except importlib.metadata.PackageNotFoundError:
        raise ImportError(f'--backend {backend} needs the Python package {backend!r}, which is not installed: '
                          f'pip install {backend}') from None


def model_key(checkpoint, dict_dir, backend: str, sharp_checkpoint=None, fidelity: float = 1.0,
              dft_levels=None) -> str:
    """The cache folder's name for one model on one backend (16 hex digits)."""
    parts = [f'format {CACHE_FORMAT}', f'{backend} {backend_version(backend)}', f'torch {torch.__version__}',
             f'fidelity {float(fidelity):.6f}', f'dft_levels {None if dft_levels is None else list(dft_levels)}']
    parts += [f'{p.name} {file_fingerprint(p)}' for p in _weight_files(checkpoint, dict_dir, sharp_checkpoint)]
    return hashlib.sha256('\n'.join(parts).encode()).hexdigest()[:16]


class RuntimeGenerator:
    """A converted generator: ``g(images, boxes) -> (B, 3, S, S)`` float32 tensor on the CPU.

    Carries ``config``, ``precision``, ``checkpoint_format`` and ``backend`` as the torch model does
    (the photo pipeline reads them); ``fidelity_blend`` is None (the graph has one fidelity).
    """

    fidelity_blend = None

    def __init__(self, run, config, precision: str, backend: str, checkpoint_format: str, folder: Path):
        self._run = run
        self.config, self.precision, self.backend = config, precision, backend
        self.checkpoint_format, self.folder = checkpoint_format, folder

    def __call__(self, images: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        images = images.detach().float().cpu().contiguous().numpy()
        boxes = boxes.detach().float().cpu().contiguous().numpy()
        return torch.from_numpy(np.ascontiguousarray(self._run(images, boxes)))


def _compile(backend: str, folder: Path, precision: str, threads: int = 0):
    """A function (images, boxes) -> output for the converted model in ``folder``."""
    if backend == 'onnxruntime':
        ort = require('onnxruntime', '--backend onnxruntime')
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(str(folder / 'model.onnx'), options, providers=['CPUExecutionProvider'])
        return lambda images, boxes: session.run(None, {'images': images, 'boxes': boxes})[0]
    ov = require('openvino', '--backend openvino')
    core = ov.Core()
    core.set_property({'CACHE_DIR': str(folder / 'openvino_cache')})  # compiled blobs: a second start is fast
    compiled = core.compile_model(str(folder / 'model.xml'), 'CPU',
                                  {'INFERENCE_PRECISION_HINT': _OPENVINO_PRECISION[precision]})
    return lambda images, boxes: compiled({'images': images, 'boxes': boxes})[0]


def _seconds_per_face(run, images, boxes, repeats: int = 2) -> float:
    run(images, boxes)  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        run(images, boxes)
    return (time.perf_counter() - start) / (repeats * len(images))


def _convert(backend: str, folder: Path, torch_model, precision: str) -> dict:
    """Export ``torch_model`` into ``folder`` (atomically: a temporary sibling renamed), check it against
    torch in float32 and time both at ``precision``; returns the manifest written there."""
    with atomic_directory(folder) as tmp:
        onnx_path = export_onnx(torch_model, tmp / 'model.onnx')
        if backend == 'openvino':
            export_openvino(onnx_path, tmp)
        images, boxes = example_inputs(torch_model.config.image_size, batch=2, seed=1)
        run_precision, torch_model.precision = torch_model.precision, 'fp32'
        try:
            with torch.no_grad():
                reference = torch_model(images, boxes)
        finally:
            torch_model.precision = run_precision
        difference = compare(reference, _compile(backend, tmp, 'fp32')(images.numpy(), boxes.numpy()))
        if not difference['max_255'] <= MAX_CONVERSION_DIFF_255:
            raise RuntimeError(f'the {backend} model differs from torch by {difference["max_255"]:.2f}/255 '
                               f'(limit {MAX_CONVERSION_DIFF_255}): not used')
        manifest = {'backend': backend, 'version': backend_version(backend), 'float32_difference_255': difference,
                    'cpu': _cpu_name(), 'config': dataclasses.asdict(torch_model.config),
                    'checkpoint_format': torch_model.checkpoint_format, 'seconds_per_face': {}}
        manifest = _record_timing(backend, tmp, manifest, torch_model, precision)
    logger.info('converted the generator for %s into %s (%.2f/255 from torch in float32)', backend, folder,
                difference['max_255'])
    return manifest


def _cpu_name() -> str:
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return 'unknown'


def _read_manifest(folder: Path) -> dict | None:
    """The manifest of a complete converted model in ``folder``, or None (missing or damaged)."""
    try:
        manifest = json.loads((folder / 'manifest.json').read_text())
    except (OSError, ValueError):
        return None
    needed = ['model.onnx'] + (['model.xml', 'model.bin'] if manifest.get('backend') == 'openvino' else [])
    return manifest if all((folder / name).is_file() for name in needed) else None


def choose_backend(checkpoint, dict_dir, device, precision: str, cache_dir=None, fidelity=1.0, **key_args) -> str:
    """``backend='auto'``: torch on CUDA and for a per-face fidelity; on the CPU the backend whose
    converted model is cached with the shortest recorded time per face at ``precision`` (torch when
    none is recorded: converting is an explicit ``--backend`` run, never a surprise)."""
    root = runtime_cache_dir(cache_dir)
    if torch.device(device).type != 'cpu' or not isinstance(fidelity, (int, float)) or not root.is_dir():
        return 'torch'
    best, best_time = 'torch', None
    for backend in ('openvino', 'onnxruntime'):
        try:
            folder = root / model_key(checkpoint, dict_dir, backend, fidelity=fidelity, **key_args)
        except ImportError:
            continue
        manifest = _read_manifest(folder)
        timings = (manifest or {}).get('seconds_per_face', {}).get(precision, {})
        if backend in timings and 'torch' in timings and timings[backend] < timings['torch']:
            if best_time is None or timings[backend] < best_time:
                best, best_time = backend, timings[backend]
    return best


def load_runtime(checkpoint, dict_dir, backend: str, precision: str = 'fp32', cache_dir=None,
                 sharp_checkpoint=None, fidelity=1.0, dft_levels=None, threads: int = 0) -> RuntimeGenerator:
    """The generator of ``checkpoint`` + ``dict_dir`` on ``backend`` ('openvino' or 'onnxruntime'),
    converted on first use and cached (see the module docstring). ``ImportError`` names a missing
    package; ``ValueError`` a precision the backend cannot run or a per-face fidelity."""
    from dfdnet.archs.checkpoint import load_generator

    if backend not in ('openvino', 'onnxruntime'):
        raise ValueError(f"backend must be 'openvino' or 'onnxruntime' here, got {backend!r}")
    if not isinstance(fidelity, (int, float)):
        raise ValueError(f'--backend {backend} runs one fidelity for every face: give --fidelity a number '
                         '(fidelity auto runs on --backend torch)')
    if precision not in _OPENVINO_PRECISION:
        raise ValueError(f'precision must be one of {tuple(_OPENVINO_PRECISION)} here, got {precision!r}')
    if backend == 'onnxruntime' and precision != 'fp32':
        raise ValueError(f'--backend onnxruntime runs float32 only on the CPU: use --precision fp32, or '
                         f'--backend openvino for {precision}')
    folder = runtime_cache_dir(cache_dir) / model_key(checkpoint, dict_dir, backend, sharp_checkpoint, fidelity,
                                                      dft_levels)
    manifest = _read_manifest(folder)
    if manifest is None or precision not in manifest.get('seconds_per_face', {}):
        # float32 atoms: the graph is exported in float32 (the precision is a compile setting)
        torch_model = load_generator(checkpoint, dict_dir, device='cpu', precision='fp32', dft_levels=dft_levels,
                                     sharp_checkpoint=sharp_checkpoint, fidelity=fidelity)
        torch_model.precision = precision
        if manifest is None:
            if folder.exists():
                logger.warning('%s: incomplete or damaged converted model: converting again', folder)
            manifest = _convert(backend, folder, torch_model, precision)
        else:
            manifest = _record_timing(backend, folder, manifest, torch_model, precision)
        del torch_model
    else:
        logger.info('%s model from the cache: %s', backend, folder)
    return RuntimeGenerator(_compile(backend, folder, precision, threads), GeneratorConfig(**manifest['config']),
                            precision, backend, manifest['checkpoint_format'], folder)


def _record_timing(backend: str, folder: Path, manifest: dict, torch_model, precision: str) -> dict:
    """Time the model in ``folder`` and ``torch_model`` at ``precision`` (seconds per face, batch 2);
    the manifest with them, rewritten atomically."""
    images, boxes = example_inputs(torch_model.config.image_size, batch=2, seed=1)
    with torch.no_grad():
        timings = {'torch': _seconds_per_face(lambda i, b: torch_model(i, b), images, boxes)}
    timings[backend] = _seconds_per_face(_compile(backend, folder, precision), images.numpy(), boxes.numpy())
    logger.info('%s: %s', precision, ', '.join(f'{k} {v:.3f} s per face' for k, v in timings.items()))
    manifest = {**manifest, 'seconds_per_face': {**manifest.get('seconds_per_face', {}), precision: timings}}
    with atomic_path(folder / 'manifest.json') as tmp:
        Path(tmp).write_text(json.dumps(manifest, indent=1))
    return manifest


__all__ = ['BACKENDS', 'RuntimeGenerator', 'choose_backend', 'file_fingerprint', 'load_runtime', 'model_key',
           'runtime_cache_dir']
