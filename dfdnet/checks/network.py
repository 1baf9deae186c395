"""Device check sections on the generator alone: parity with the CPU, speed, the environment."""
from __future__ import annotations

import contextlib
import logging
import subprocess
import time
from pathlib import Path

import torch

from dfdnet.archs.dfdnet_arch import GeneratorConfig
from dfdnet.archs.random_weights import TYPICAL_BOXES, random_generator
from dfdnet.utils.benchmarking import machine_info, peak_rss_mb, timed

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]


def released_layout(width: int = 64, image_size: int = 512) -> GeneratorConfig:
    """The released generator's layout at ``width`` channels; another ``image_size`` scales the part
    sizes with it (at least 32 px, so that every part keeps a 2 x 2 atom at stride 16)."""
    parts = tuple(max(32, size * image_size // 512) for size in GeneratorConfig().part_sizes)
    return GeneratorConfig(width=width, image_size=image_size, part_sizes=parts)


def _faces(batch: int, size: int, seed: int = 0) -> tuple:
    """(images (batch, 3, size, size) in [-1, 1], boxes (batch, 4, 4)): smooth random faces, typical boxes."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(batch, 3, size // 16, size // 16, generator=generator) * 2 - 1
    images = torch.nn.functional.interpolate(coarse, size=(size, size), mode='bilinear', align_corners=False)
    boxes = torch.tensor([TYPICAL_BOXES] * batch) * size // 512
    return images.contiguous(memory_format=torch.channels_last), boxes


@contextlib.contextmanager
def _tf32(allowed: bool):
    """TF32 for CUDA convolutions and matrix products on or off inside the block (torch's default:
    on for cuDNN convolutions, off for matrix products)."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = allowed
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _to_255(x: torch.Tensor) -> torch.Tensor:
    return ((x.float().cpu() + 1) * 127.5).clamp(0, 255)


def check_parity(section, device: str, config: GeneratorConfig, num_atoms: int, tolerances: dict,
                 perturb_255: float = 0.0, batch: int = 2) -> None:
    """The released-layout generator (``config``, K ``num_atoms``, seeded random weights) on
    ``device`` in each precision of ``tolerances`` ({precision: (max, mean)} in 0-255 units) against
    its float32 CPU output. ``perturb_255`` is added to the device outputs (to test the check itself)."""
    model = random_generator(config, seed=0, num_atoms=num_atoms)
    images, boxes = _faces(batch, config.image_size)
    with torch.inference_mode():
        reference = _to_255(model(images, boxes))
    section.data.update({'width': config.width, 'image_size': config.image_size, 'K': num_atoms, 'faces': batch,
                         'perturb_255': perturb_255, 'reference_std_255': round(float(reference.std()), 3)})
    model.to(device)
    runs = [(p, p, tol, contextlib.nullcontext()) for p, tol in tolerances.items()]
    if device.startswith('cuda') and 'fp32' in tolerances:  # torch's default fp32 convolutions use TF32 on a GPU
        runs.insert(1, ('fp32 without TF32', 'fp32', tolerances['fp32'], _tf32(False)))
    section.data['cudnn_allow_tf32'] = torch.backends.cudnn.allow_tf32
    for name, precision, (max_tol, mean_tol), context in runs:
        model.precision = precision
        with context, torch.inference_mode():
            output = _to_255(model(images.to(device), boxes.to(device))) + perturb_255
        diff = (output - reference).abs()
        finite = bool(torch.isfinite(output).all())
        section.check(f'{name} output finite', finite, True, finite)
        section.check(f'{name} max |diff|', round(float(diff.max()), 4), max_tol, float(diff.max()) <= max_tol, '/255')
        if mean_tol is not None:
            section.check(f'{name} mean |diff|', round(float(diff.mean()), 4), mean_tol,
                          float(diff.mean()) <= mean_tol, '/255')
    section.check('reference output not constant', round(float(reference.std()), 3), '> 1', float(reference.std()) > 1,
                  '/255')


def reset_peak(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: str) -> dict:
    """Peak memory since the last reset: ``torch.cuda.max_memory_allocated`` on a GPU (MiB), else
    the process's peak resident set size (MiB; it never goes down)."""
    if device.startswith('cuda'):
        return {'peak_cuda_mib': round(torch.cuda.max_memory_allocated(device) / 2**20, 1)}
    return {'peak_rss_mib': round(peak_rss_mb(), 1)}


def _time_model(section, name: str, model, device: str, batches, precisions, repeats: int) -> None:
    size = model.config.image_size
    for precision in precisions:
        model.precision = precision
        for batch in batches:
            images, boxes = _faces(batch, size, seed=batch)
            images, boxes = images.to(device), boxes.to(device)
            reset_peak(device)

            def step():
                with torch.inference_mode():
                    model(images, boxes)
            times = timed(step, repeats=repeats, warmup=1, device=device)
            median = sorted(times)[len(times) // 2]
            row = {'network': name, 'precision': precision, 'batch': batch, 'faces_per_s': round(batch / median, 3),
                   's_per_batch': round(median, 4), **peak_memory(device)}
            section.rows.append(row)
            logger.info('%s', row)
            section.check(f'{name} {precision} batch {batch} faces/s > 0', row['faces_per_s'], '> 0',
                          row['faces_per_s'] > 0)


def check_speed(section, device: str, config: GeneratorConfig, num_atoms: int, batches, precisions, repeats: int,
                shipped_batches=()) -> None:
    """Faces per second (median of ``repeats`` after a warm-up) and peak memory for the released
    network (random weights, K ``num_atoms``) at ``batches`` and the shipped model (as the restore
    command loads it) at ``shipped_batches``."""
    from dfdnet.archs.checkpoint import load_generator
    from dfdnet.pipeline.photo import resolve_fidelity, shipped_model_dir

    model = random_generator(config, seed=0, num_atoms=num_atoms).to(device)
    name = f'released layout (width {config.width}, {config.image_size} px, K {num_atoms})'
    _time_model(section, name, model, device, batches, precisions, repeats)
    del model
    if device.startswith('cuda'):
        torch.cuda.empty_cache()
    if not shipped_batches:
        return
    checkpoint = shipped_model_dir() / 'net_g.pth'
    sharp, fidelity = resolve_fidelity(checkpoint)
    start = time.perf_counter()
    model = load_generator(checkpoint, checkpoint.parent / 'dictionaries', device=device, sharp_checkpoint=sharp,
                           fidelity=fidelity)
    section.data['shipped_model_load_s'] = round(time.perf_counter() - start, 3)
    _time_model(section, 'shipped model', model, device, shipped_batches, precisions, repeats)


def _command(args: list) -> str | None:
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=30, cwd=ROOT)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def check_environment(section, device: str) -> None:
    """GPU name, memory, driver, CUDA, cuDNN, torch, faiss and the git commit (dirty or not)."""
    info = machine_info(device)
    info.update({'device': device, 'cuda_available': torch.cuda.is_available(), 'torch_cuda': torch.version.cuda,
                 'cudnn': torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
                 'git_commit': _command(['git', 'rev-parse', 'HEAD']),
                 'git_dirty': bool(_command(['git', 'status', '--porcelain', '--untracked-files=no']))})
    if device.startswith('cuda'):
        props = torch.cuda.get_device_properties(torch.device(device))
        info.update({'gpu_memory_gib': round(props.total_memory / 2**30, 2),
                     'compute_capability': f'{props.major}.{props.minor}',
                     'bf16_supported': torch.cuda.is_bf16_supported(),
                     'nvidia_smi': _command(['nvidia-smi', '--query-gpu=name,memory.total,driver_version',
                                             '--format=csv,noheader'])})
        section.check('CUDA device usable', info['gpu'], 'a GPU', bool(info.get('gpu')))
    try:
        import faiss
        info['faiss'] = f"{faiss.__version__}, {faiss.get_num_gpus() if hasattr(faiss, 'get_num_gpus') else 0} GPU(s)"
    except ImportError:
        info['faiss'] = None
    section.data.update(info)
