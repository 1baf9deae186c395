"""Device check sections that run the project's commands: a photo through ``test_FaceDict.py``,
training (one process, then torchrun) and a dictionary build."""
from __future__ import annotations

import json
import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from dfdnet.checks.network import ROOT, reset_peak, peak_memory

logger = logging.getLogger(__name__)


def check_photo(section, device: str, photo: Path, work: Path, batches, precisions, upscale: int) -> None:
    """``test_FaceDict.py`` (its ``main``, in this process) on ``photo`` with the default model, once
    per (batch, precision): faces per second, the wall time and the seconds of each stage."""
    from dfdnet.cli import restore

    if not photo.is_file():
        section.skipped = f'photo not found: {photo} (give --photo or --data)'
        return
    for precision in precisions:
        for batch in batches:
            out = work / f'photo_b{batch}_{precision}'
            argv = ['--test_path', str(photo), '--results_dir', str(out), '--device', device, '--batch_size',
                    str(batch), '--precision', precision, '--upscale_factor', str(upscale), '--no_html']
            reset_peak(device)
            start = time.perf_counter()
            code = restore.main(argv)
            wall = time.perf_counter() - start
            summary = json.loads((out / 'summary.json').read_text()) if (out / 'summary.json').is_file() else {}
            faces = summary.get('faces_restored', 0)
            restore_s = summary.get('stage_seconds', {}).get('restore', 0.0)
            row = {'precision': precision, 'batch': batch, 'faces': faces, 'wall_s': round(wall, 3),
                   'faces_per_s_generator': round(faces / restore_s, 3) if restore_s else None,
                   'faces_per_s_whole': round(faces / wall, 3), 'model_load_s': summary.get('model_load_seconds'),
                   **{f'{k}_s': v for k, v in summary.get('stage_seconds', {}).items()}, **peak_memory(device)}
            section.rows.append(row)
            section.check(f'b{batch} {precision} exit status', code, 0, code == 0)
            section.check(f'b{batch} {precision} faces restored', faces, f"detected ({summary.get('faces_detected')})",
                          faces > 0 and faces == summary.get('faces_detected'))
    section.data['photo'] = str(photo)


def _train_overrides(root: Path, faces: Path, device: str, sizes, iters: int, amp) -> list:
    return [f'experiments_root={root}', f'train_data.hq_folder={faces}', f'train.total_iter={iters}',
            f'train_data.batch_size={sizes.train_batch}', f'train_data.num_workers={sizes.train_workers}',
            f'train_data.max_images={sizes.train_faces}', 'train_data.val_count=1', 'train_data.landmarks=null',
            'train_data.pin_memory=false', 'logger.use_tb_logger=false', 'logger.print_freq=1', 'val.freq=100000',
            'val.num_save_images=1', f'logger.save_checkpoint_freq={iters}', f'device={device}',
            f"train.amp={amp or 'null'}"]


def _paper_overrides(sizes) -> list:
    """The paper-size config (options/train.yml) without the files a fresh machine lacks: a seeded
    random encoder and random dictionaries of ``sizes.train_atoms`` atoms."""
    extra = ['init.encoder_weights=null', 'init.random_encoder_seed=0', 'init.dictionaries=null',
             'init.random_dictionary_seed=0', f'init.random_dictionary_atoms={sizes.train_atoms}']
    if sizes.paper_width:  # reduced: the generator and the discriminator this wide
        extra += [f'generator.width={sizes.paper_width}', f'discriminator.base_channels={sizes.paper_width}']
    return extra


def _train(config: Path, overrides: list, device: str, auto_resume: bool = False) -> dict:
    """One training run in this process: step seconds (each after a device sync), iterations, peak memory."""
    from dfdnet.models.options import parse_options
    from dfdnet.models.trainer import Trainer

    options, resolved = parse_options(config, overrides)
    trainer = Trainer(options, resolved, ['gpu_check'], auto_resume=auto_resume)
    start_iter, steps = trainer.iteration, []
    original = trainer.model.optimize_parameters

    def timed_step(batch):
        begin = time.perf_counter()
        losses = original(batch)
        if device.startswith('cuda'):
            torch.cuda.synchronize(device)
        steps.append(time.perf_counter() - begin)
        return losses

    trainer.model.optimize_parameters = timed_step
    reset_peak(device)
    try:
        losses = trainer.run()
    finally:
        trainer.close()
    later = steps[1:] or steps  # the first step pays for the warm-up (cuDNN autotuning, allocations)
    return {'start_iter': start_iter, 'end_iter': trainer.iteration, 'steps': len(steps),
            'step_s_median': round(statistics.median(later), 4) if later else None,
            'first_step_s': round(steps[0], 4) if steps else None,
            'losses_finite': all(np.isfinite(float(v)) for v in losses.values()), **peak_memory(device),
            'experiment': str(options.experiment_dir)}


def check_training(section, device: str, faces: Path, work: Path, sizes, amp) -> None:
    """``sizes.smoke_iters`` iterations of options/train_smoke.yml, ``sizes.paper_iters`` of
    options/train.yml (paper size), then ``sizes.resume_iters`` more of the smoke run from its saved state."""
    if not faces.is_dir():
        section.skipped = f'training faces not found: {faces} (give --data)'
        return
    smoke, paper = ROOT / 'options' / 'train_smoke.yml', ROOT / 'options' / 'train.yml'
    resumed = sizes.smoke_iters + sizes.resume_iters
    runs = {  # name: (config, overrides, resume, last iteration)
        'smoke': (smoke, _train_overrides(work / 'train', faces, device, sizes, sizes.smoke_iters, amp), False,
                  sizes.smoke_iters),
        'paper': (paper, _train_overrides(work / 'train', faces, device, sizes, sizes.paper_iters, amp)
                  + _paper_overrides(sizes), False, sizes.paper_iters),
        'resume': (smoke, _train_overrides(work / 'train', faces, device, sizes, resumed, amp), True, resumed),
    }
    section.data.update({'amp': amp, 'batch': sizes.train_batch})
    if not sizes.paper_iters:
        del runs['paper']
    for name, (config, overrides, resume, target) in runs.items():
        result = _train(config, overrides, device, auto_resume=resume)
        section.rows.append({'run': name, **result})
        if resume:
            section.check('resume starts at the saved iteration', result['start_iter'], sizes.smoke_iters,
                          result['start_iter'] == sizes.smoke_iters)
        section.check(f'{name} reached its last iteration', result['end_iter'], target, result['end_iter'] == target)
        section.check(f'{name} losses finite', result['losses_finite'], True, result['losses_finite'])


def _run(cmd: list, env: dict, timeout_s: float) -> tuple:
    """(exit status or 'timeout', stdout + stderr) of ``cmd`` run from the project root."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, cwd=ROOT, env=env)
        return proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        return 'timeout', str(exc.stderr or '')


def check_ddp(section, device: str, faces: Path, work: Path, sizes, timeout_s: float) -> None:
    """``torchrun --standalone --nproc_per_node=1 train.py --launcher pytorch`` on the smoke config,
    then the restore command sharded the same way on TestData/: NCCL on a GPU, gloo on the CPU."""
    if not faces.is_dir():
        section.skipped = f'training faces not found: {faces} (give --data)'
        return
    iters = sizes.resume_iters
    overrides = _train_overrides(work / 'ddp', faces, device, sizes, iters, None) + ['name=gpu_check_ddp']
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=1',
           str(ROOT / 'train.py'), '-opt', str(ROOT / 'options' / 'train_smoke.yml'), '--launcher', 'pytorch']
    for item in overrides:
        cmd += ['--set', item]
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join(filter(None, [str(ROOT), os.environ.get('PYTHONPATH')]))}
    if device.startswith('cuda'):
        env['CUDA_VISIBLE_DEVICES'] = device.partition(':')[2] or '0'
    start = time.perf_counter()
    code, output = _run(cmd, env, timeout_s)
    state = work / 'ddp' / 'gpu_check_ddp' / 'training_states' / f'{iters}.state'
    section.data.update({'backend': 'nccl' if device.startswith('cuda') else 'gloo',
                         'wall_s': round(time.perf_counter() - start, 3), 'exit': code, 'output_tail': output[-3000:]})
    section.check('torchrun exit status', code, 0, code == 0)
    section.check('final training state written', state.is_file(), True, state.is_file())
    results = work / 'ddp_restore'
    restore = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=1',
               str(ROOT / 'test_FaceDict.py'), '--test_path', str(ROOT / 'TestData'), '--results_dir', str(results),
               '--device', device, '--no_html']
    start = time.perf_counter()
    code, output = _run(restore, env, timeout_s)
    try:
        photos = json.loads((results / 'summary.json').read_text()).get('photos', [])
    except (OSError, ValueError):
        photos = []
    ranked = [p for p in photos if 'rank' in p]
    section.data['sharded_restoration'] = {'wall_s': round(time.perf_counter() - start, 3), 'exit': code,
                                           'photos': len(photos), 'output_tail': output[-2000:]}
    section.check('sharded restore exit status', code, 0, code == 0)
    section.check('sharded restore: every photo has its rank', len(ranked), len(photos), photos and ranked == photos)


def check_dictionary(section, device: str, faces: Path, work: Path, num_faces: int, k: int) -> None:
    """build_dictionary on ``num_faces`` faces with a seeded random encoder: landmarks, feature
    extraction on ``device`` and K-means (faiss on a GPU when a GPU build is installed, else torch)."""
    from dfdnet.dictionary.builder import build_dictionary
    from dfdnet.dictionary.options import load_options

    if not faces.is_dir():
        section.skipped = f'dictionary faces not found: {faces} (give --data)'
        return
    options = load_options(None, {'input': str(faces), 'output': str(work / 'dictionary'), 'k': k,
                                  'random_encoder': 0, 'max_faces': num_faces, 'device': device, 'batch_size': 8})
    reset_peak(device)
    summary = build_dictionary(options)
    meta = json.loads((work / 'dictionary' / 'dictionary.json').read_text())
    backends = sorted({s['backend'] for s in meta['kmeans'].values()})
    section.data.update({'faces_used': summary.faces_used, 'K': k, 'seconds': meta['seconds'],
                         'kmeans_backends': backends,
                         **peak_memory(device)})
    section.rows.append({'faces': summary.faces_used, 'K': k, 'backend': ','.join(backends),
                         **{f'{key}_s': v for key, v in meta['seconds'].items()}, **peak_memory(device)})
    files = sorted((work / 'dictionary').glob('*_center.npy'))
    section.check('faces used', summary.faces_used, num_faces, summary.faces_used == num_faces)
    section.check('dictionary files', len(files), 16, len(files) == 16)
    finite = all(np.isfinite(np.load(f)).all() and np.load(f).shape[0] == k for f in files)
    section.check('atoms finite, K each', finite, True, finite)
