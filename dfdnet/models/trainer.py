"""The training loop: experiment folder, data, model, logging, validation, checkpoints, resume, DDP.

experiments/<name>/: ``options_<time>.yml`` and ``command.txt`` (as run), ``train_<time>.log``,
``models/`` (net_g_<iter>.pth, net_g_best.pth, net_d_<iter>.pth), ``training_states/``,
``tb_logger/`` (TensorBoard), ``visualization/<iter>/`` (validation images: LQ | output | GT).
"""
from __future__ import annotations

import logging
import os
import random
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.distributed as dist
import yaml

from dfdnet.archs.checkpoint import save_generator
from dfdnet.data.degradation_pipeline import DegradationPipeline
from dfdnet.data.face_dataset import EpochSampler, FaceDataset, build_train_loader, load_landmarks, split_train_val
from dfdnet.data.validation_set import ValidationDataset, make_validation_set
from dfdnet.models.builders import build_component_discriminator, build_discriminator, build_generator, \
    build_perceptual_net
from dfdnet.models.dfdnet_model import DFDNetModel, unwrap
from dfdnet.models.options import OptionsError, check_experiment_paths
from dfdnet.models.training_state import get_rng_state, load_latest_state, load_training_state, \
    save_training_state, set_rng_state
from dfdnet.utils.device import select_device
from dfdnet.utils.distributed import DistInfo, launched_info, rank_device
from dfdnet.utils.files import atomic_path, atomic_torch_save, remove_stale_temporaries
from dfdnet.utils.image_io import list_face_images
from dfdnet.utils.run_lock import FolderLock
from dfdnet.utils.text import SafeFormatter

logger = logging.getLogger(__name__)


def init_distributed(launcher: str, device_option: str) -> tuple[DistInfo, torch.device]:
    """'none' or 'pytorch' (torchrun env vars); NCCL on CUDA, gloo on CPU. Returns (info, device):
    ``device_option`` by the one device rule (``select_device``), each rank's own GPU under torchrun."""
    if launcher == 'none':
        return DistInfo(), torch.device(select_device(device_option))
    if launcher != 'pytorch':
        raise ValueError(f"launcher must be 'none' or 'pytorch', got {launcher!r}")
    if 'RANK' not in os.environ or 'WORLD_SIZE' not in os.environ:
        raise RuntimeError('--launcher pytorch needs the RANK/WORLD_SIZE variables that torchrun sets: run '
                           '`torchrun --nproc_per_node=N train.py -opt ... --launcher pytorch`')
    info = launched_info()
    device = torch.device(rank_device(info, device_option))
    use_cuda = device.type == 'cuda'
    if use_cuda:
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group('nccl' if use_cuda else 'gloo')
    return info, device


def setup_logging(log_file: Path | None, is_main: bool) -> None:
    root = logging.getLogger()
    root.setLevel(logging.INFO if is_main else logging.WARNING)
    fmt = SafeFormatter('%(asctime)s %(levelname)s %(name)s: %(message)s', '%Y-%m-%d %H:%M:%S')  # names escaped
    for handler in list(root.handlers):
        if getattr(handler, '_dfdnet', False):
            root.removeHandler(handler)
            handler.close()
    handlers = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        handlers.append(logging.FileHandler(log_file))
    for handler in handlers:
        handler.setFormatter(fmt)
        handler._dfdnet = True
        root.addHandler(handler)


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def experiment_lock(exp_dir: Path) -> FolderLock:
    """The lock of experiments/<name> (``experiments/.<name>.lock``, beside the folder, which may be
    moved aside), not yet taken: one training run per experiment at a time."""
    return FolderLock(exp_dir.parent / f'.{exp_dir.name}.lock', what='experiment folder', folder=exp_dir)


def _remove_temporaries(folder: Path) -> None:
    """Delete the unfinished files (checkpoints, training states) of a killed run, and say so."""
    removed = remove_stale_temporaries(folder, min_age_s=0.0)  # the experiment's lock is held: none is live
    if removed:
        print(f'removed {removed} unfinished temporary file(s) that an interrupted run left in {folder}',
              file=sys.stderr)


def prepare_experiment(options, resolved: dict, argv, resume: bool, info: DistInfo) -> Path:
    """Create experiments/<name>/ (an old one is renamed aside unless resuming) and archive the
    resolved options (YAML after ``--set`` overrides) and the command line. The caller (rank 0)
    holds the experiment's lock (``experiment_lock``)."""
    exp_dir = options.experiment_dir
    stamp = time.strftime('%Y%m%d_%H%M%S')
    if info.is_main:
        if exp_dir.exists() and not resume:
            archived = exp_dir.with_name(f'{exp_dir.name}_archived_{stamp}')
            exp_dir.rename(archived)
            print(f'experiment folder {exp_dir} exists: moved to {archived}', file=sys.stderr)
            _remove_temporaries(archived)
        for sub in ('models', 'training_states', 'visualization'):
            (exp_dir / sub).mkdir(parents=True, exist_ok=True)
        _remove_temporaries(exp_dir)
        with atomic_path(exp_dir / f'options_{stamp}.yml') as tmp:
            tmp.write_text(yaml.safe_dump(resolved, sort_keys=False))
        with open(exp_dir / 'command.txt', 'a') as fh:
            fh.write(f'{stamp} {" ".join(argv)}\n')
    info.barrier()
    return exp_dir


class Trainer:
    """Runs ``options`` (``ExperimentOptions``); ``run()`` trains to ``train.total_iter``."""

    def __init__(self, options, resolved: dict, argv=(), launcher: str = 'none', auto_resume: bool = False,
                 resume_state=None):
        self.options = options
        check_experiment_paths(options, resume_state)  # before experiments/<name> is touched
        try:
            self.files = list_face_images(options.train_data.hq_folder)
        except FileNotFoundError as exc:
            raise OptionsError(f'train_data.hq_folder: {exc}') from exc
        self.info, self.device = init_distributed(launcher, options.device)
        self._lock = experiment_lock(options.experiment_dir).acquire() if self.info.is_main else None
        try:
            self._setup(resolved, argv, auto_resume, resume_state)
        except BaseException:
            if self._lock is not None:
                self._lock.release()
            raise

    def _setup(self, resolved: dict, argv, auto_resume: bool, resume_state) -> None:
        """The experiment folder, logging, data, model and resumed state (the experiment is locked)."""
        options = self.options
        self.exp_dir = prepare_experiment(options, resolved, list(argv), auto_resume or resume_state is not None,
                                          self.info)
        stamp = time.strftime('%Y%m%d_%H%M%S')
        setup_logging(self.exp_dir / f'train_{stamp}.log' if self.info.is_main else None, self.info.is_main)
        set_seed(options.manual_seed + self.info.rank)
        self._build_data()
        net_g, self.init_record = build_generator(options.generator, options.init, self.exp_dir,
                                                     options.manual_seed)
        net_d = build_discriminator(options.discriminator, options.manual_seed)
        self.model = DFDNetModel(net_g, net_d, options.train, self.device, build_perceptual_net(options.train, net_g),
                                 distributed=self.info.enabled,
                                 net_d_comp=build_component_discriminator(options.discriminator, options.manual_seed),
                                 components=options.discriminator)
        self.iteration, self.epoch, self.batches_in_epoch = 0, 0, 0
        self.best = {'psnr': float('-inf'), 'iteration': 0}
        if resume_state:
            self._resume(Path(resume_state), load_training_state(resume_state, self.device))
        elif auto_resume:
            found = load_latest_state(self.exp_dir / 'training_states', self.device)
            if found is None:
                logger.warning('--auto_resume: no training state in %s: starting from iteration 0',
                               self.exp_dir / 'training_states')
            else:
                self._resume(*found)
        self.tb = None
        if self.info.is_main and options.logger.use_tb_logger:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(self.exp_dir / 'tb_logger'))

    # ------------------------------------------------------------------ setup
    def _build_data(self) -> None:
        opt, data = self.options, self.options.train_data
        train_files, val_files = split_train_val(self.files, data.val_count, data.max_images)
        cache_out = self.exp_dir / 'landmarks.npz'
        if self.info.is_main:  # detection (if needed) runs once, on rank 0
            landmarks = load_landmarks(train_files + val_files, data.landmarks, data.landmark_size, cache_out)
        self.info.barrier()
        if not self.info.is_main:
            landmarks = load_landmarks(train_files + val_files, data.landmarks, data.landmark_size, cache_out)
        size = opt.generator.image_size
        self.train_set = FaceDataset([f for f in train_files if f in landmarks], landmarks, size,
                                     DegradationPipeline(data.degradation), data.flip_prob, opt.manual_seed,
                                     data.landmark_size)
        needed = data.batch_size * self.info.world_size
        if len(self.train_set) < needed:
            raise ValueError(f'{len(self.train_set)} training faces, fewer than one batch of {needed}')
        self.sampler = EpochSampler(self.train_set, self.info.world_size, self.info.rank, opt.manual_seed)
        self.loader = build_train_loader(self.train_set, self.sampler, data.batch_size, data.num_workers,
                                         data.pin_memory and self.device.type == 'cuda', data.persistent_workers,
                                         data.prefetch_factor)
        self.val_loader = None
        if val_files:
            folder = Path(opt.val.folder) if opt.val.folder else self.exp_dir / 'val_set'
            if self.info.is_main:
                make_validation_set(folder, val_files, landmarks, size, opt.val.degradation, opt.val.seed,
                                    data.landmark_size)
            self.info.barrier()
            self.val_loader = torch.utils.data.DataLoader(ValidationDataset(folder), batch_size=1)
        logger.info('%d training faces, %d validation faces, batch %d x %d process(es), image size %d',
                    len(self.train_set), len(val_files), data.batch_size, self.info.world_size, size)

    def _resume(self, path: Path, state: dict) -> None:
        self.model.load_state_dict(state['model'])
        self.iteration, self.epoch = int(state['iteration']), int(state['epoch'])
        self.batches_in_epoch = int(state['batches_in_epoch'])
        self.best = dict(state['best'])
        saved_layout = (int(state['batch_size']), int(state['world_size']))
        if saved_layout != (self.options.train_data.batch_size, self.info.world_size):
            logger.warning('state saved with batch %d x %d processes, resuming with %d x %d: the data order of this '
                           'epoch differs from an uninterrupted run', state['batch_size'], state['world_size'],
                           self.options.train_data.batch_size, self.info.world_size)
        rng = state['rng']
        if len(rng) == self.info.world_size:
            set_rng_state(rng[self.info.rank])
        else:
            logger.warning('state saved with %d processes, resuming with %d: RNG states not restored',
                           len(rng), self.info.world_size)
        logger.info('resumed from %s at iteration %d (epoch %d, batch %d)', path, self.iteration, self.epoch,
                    self.batches_in_epoch)

    # ------------------------------------------------------------------ loop
    def run(self) -> dict:
        opt = self.options
        total = opt.train.total_iter
        batch_total = opt.train_data.batch_size * self.info.world_size
        logger.info('training from iteration %d to %d on %s', self.iteration, total, self.device)
        self.model.train_mode()
        window_start, window_iters = time.time(), 0
        run_start, start_iter = time.time(), self.iteration
        last = {}
        while self.iteration < total:
            self.sampler.set_epoch(self.epoch)
            self.sampler.set_start(self.batches_in_epoch * opt.train_data.batch_size)
            for batch in self.loader:
                self.model.iteration = self.iteration
                last = self.model.optimize_parameters(batch)
                self.model.step_schedulers()
                self.iteration += 1
                self.batches_in_epoch += 1
                window_iters += 1
                if self.iteration % opt.logger.print_freq == 0 or self.iteration == total:
                    elapsed = time.time() - window_start
                    rate = window_iters * batch_total / max(elapsed, 1e-9)
                    eta = (total - self.iteration) * (time.time() - run_start) / (self.iteration - start_iter)
                    self._log(last, rate, eta)
                    window_start, window_iters = time.time(), 0
                if self.val_loader is not None and (self.iteration % opt.val.freq == 0 or self.iteration == total):
                    self.validate()
                if self.iteration % opt.logger.save_checkpoint_freq == 0 or self.iteration == total:
                    self.save()
                if self.iteration >= total:
                    break
            else:
                self.epoch += 1
                self.batches_in_epoch = 0
        if self.tb is not None:
            self.tb.close()
        logger.info('finished at iteration %d; best PSNR %.3f dB at iteration %d', self.iteration,
                    self.best['psnr'], self.best['iteration'])
        return last

    def _log(self, losses: dict, samples_per_s: float, eta_s: float) -> None:
        lrs = self.model.learning_rates()
        text = ' '.join(f'{k} {v:.4g}' for k, v in losses.items())
        logger.info('iter %d epoch %d | %s | lr_g %.2e lr_d %.2e | %.2f samples/s | ETA %s', self.iteration,
                    self.epoch, text, lrs['lr_g'], lrs['lr_d'], samples_per_s,
                    time.strftime('%H:%M:%S', time.gmtime(eta_s)) if eta_s < 86400 else f'{eta_s / 86400:.1f} d')
        if self.tb is not None:
            for k, v in {**losses, **lrs, 'samples_per_s': samples_per_s}.items():
                self.tb.add_scalar(f'train/{k}', v, self.iteration)

    def validate(self) -> dict | None:
        """Validate on rank 0, share the reconstruction loss, step the plateau schedulers, keep the best G."""
        metrics = None
        loss = torch.zeros(1, dtype=torch.float64)
        if self.info.is_main:
            metrics, images = self.model.validate(self.val_loader, keep_images=self.options.val.num_save_images)
            loss[0] = metrics['recon_loss']
            logger.info('validation at iter %d: recon_loss %.4f PSNR %.3f dB SSIM %.4f (component boxes %.3f dB, '
                        'detail ratio %.3f)', self.iteration, metrics['recon_loss'], metrics['psnr'], metrics['ssim'],
                        metrics['component_psnr'], metrics['detail_ratio'])
            for name, lq, out, gt in images:
                with atomic_path(self.exp_dir / 'visualization' / str(self.iteration) / f'{name}.png') as tmp:
                    cv2.imwrite(str(tmp), cv2.cvtColor(np.hstack([lq, out, gt]), cv2.COLOR_RGB2BGR))
            if self.tb is not None:
                for k, v in metrics.items():
                    self.tb.add_scalar(f'val/{k}', v, self.iteration)
            if metrics['psnr'] > self.best['psnr']:
                self.best = {'psnr': metrics['psnr'], 'iteration': self.iteration}
                self._save_generator(self.exp_dir / 'models' / 'net_g_best.pth', use_ema=True, **metrics)
        if self.info.enabled:
            dist.broadcast(loss, 0)
        self.model.step_schedulers(float(loss[0]))
        self.model.train_mode()
        return metrics

    def _save_generator(self, path: Path, use_ema: bool, **meta) -> None:
        net_g = unwrap(self.model.net_g)
        meta = {'iteration': self.iteration, 'init': self.init_record, **meta}
        if use_ema and self.model.ema is not None:
            with self.model.ema.swapped_in(net_g):
                save_generator(net_g, path, ema=True, **meta)
        else:
            save_generator(net_g, path, **meta)

    def save(self) -> None:
        """Models and the training state (all ranks take part: their RNG states are gathered)."""
        rng = [get_rng_state()]
        if self.info.enabled:
            gathered = [None] * self.info.world_size
            dist.all_gather_object(gathered, rng[0])
            rng = gathered
        if self.info.is_main:
            models = self.exp_dir / 'models'
            self._save_generator(models / f'net_g_{self.iteration}.pth', use_ema=False)
            if self.model.ema is not None:
                self._save_generator(models / f'net_g_ema_{self.iteration}.pth', use_ema=True)
            atomic_torch_save({'params': unwrap(self.model.net_d).state_dict(), 'iteration': self.iteration},
                              models / f'net_d_{self.iteration}.pth')
            state = {'iteration': self.iteration, 'epoch': self.epoch, 'batches_in_epoch': self.batches_in_epoch,
                     'best': self.best, 'model': self.model.state_dict(), 'rng': rng,
                     'world_size': self.info.world_size, 'batch_size': self.options.train_data.batch_size}
            path = save_training_state(self.exp_dir / 'training_states', self.iteration, state)
            logger.info('saved models and training state %s', path)
        self.info.barrier()

    def close(self) -> None:
        """End the process group, release the experiment's lock and detach this run's log handlers."""
        if self.info.enabled and dist.is_initialized():
            dist.destroy_process_group()
        if self._lock is not None:
            self._lock.release()
        root = logging.getLogger()
        for handler in list(root.handlers):
            if getattr(handler, '_dfdnet', False):
                root.removeHandler(handler)
                handler.close()
