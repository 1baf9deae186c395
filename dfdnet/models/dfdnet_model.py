"""The DFDNet training model: generator (frozen encoder, fixed dictionaries), multi-scale and
optional component discriminators, losses (Eq. 7-9, component hinge GAN, feature matching), Adam +
ReduceLROnPlateau or cosine, optional EMA of G and autocast.
"""
from __future__ import annotations

import contextlib
import logging

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from dfdnet.archs.discriminator import component_crops
from dfdnet.losses import ReconstructionLoss, feature_matching_loss, hinge_d_loss, hinge_g_loss
from dfdnet.losses.reconstruction import style_loss
from dfdnet.models.validation import score_generator
from dfdnet.utils.precision import precision_dtype, resolve_amp

logger = logging.getLogger(__name__)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, DistributedDataParallel) else model


def make_scheduler(optimizer: torch.optim.Optimizer, options) -> torch.optim.lr_scheduler.LRScheduler:
    """The learning-rate schedule of ``options.lr_schedule`` (a ``TrainOptions``) for one optimiser."""
    if options.lr_schedule == 'cosine':
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=options.total_iter, eta_min=options.min_lr)
    return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode='min', factor=options.lr_factor,
                                                      patience=options.lr_patience, min_lr=options.min_lr)


class GeneratorEMA:
    """Exponential moving average of G's parameters; buffers (the spectral-norm power-iteration
    vectors ``weight_u``/``weight_v``) are copied, not averaged: an average of those vectors is
    not a singular-vector estimate and can make sigma ~ 0. ``swapped_in(model)`` temporarily
    loads the averaged weights."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = float(decay)
        self.param_names = {name for name, _ in model.named_parameters()}
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for key, value in model.state_dict().items():
            if key in self.param_names:
                self.shadow[key].lerp_(value.detach(), 1.0 - self.decay)
            elif key in self.shadow:
                self.shadow[key].copy_(value.detach())

    @contextlib.contextmanager
    def swapped_in(self, model: nn.Module):
        current = {k: v.detach().clone() for k, v in model.state_dict().items() if k in self.shadow}
        model.load_state_dict(self.shadow, strict=False)
        try:
            yield model
        finally:
            model.load_state_dict(current, strict=False)


class DFDNetModel:
    """Holds the networks, optimisers and schedulers of one training run.

    Args:
        net_g: ``DFDNetGenerator`` with dictionaries attached; its ``vgg_extractor`` stays frozen
            unless ``options.train_encoder``.
        net_d: ``MultiScaleDiscriminator``.
        options: ``TrainOptions`` (losses, lr, betas, patience, EMA, amp).
        device: torch device. perceptual_net: frozen feature network (default: G's encoder).
        distributed: wrap G and D in ``DistributedDataParallel``.
        net_d_comp: ``ComponentDiscriminator`` or None; trained with D's optimiser when
            ``options.component_weight`` > 0.
        components: ``DiscriminatorOptions`` naming the parts, crop sizes and enlargement of the
            component style loss (``options.component_style_weight``).
    """

    def __init__(self, net_g: nn.Module, net_d: nn.Module, options, device, perceptual_net=None,
                 distributed: bool = False, net_d_comp: nn.Module | None = None, components=None):
        self.options = options
        self.device = torch.device(device)
        self.distributed = distributed
        amp = resolve_amp(options.amp, self.device)
        self.amp_dtype = precision_dtype(amp) if amp else None
        # Reduced precision pays only with channels-last tensors (oneDNN; on a CPU with AMX-BF16
        # a contiguous bf16 backward is slower than float32), so autocast runs channels-last.
        self.memory_format = torch.channels_last if self.amp_dtype is not None else torch.contiguous_format
        net_g.to(self.device, memory_format=self.memory_format)
        net_d.to(self.device, memory_format=self.memory_format)
        if options.component_weight <= 0:
            net_d_comp = None
        if net_d_comp is not None:
            net_d_comp.to(self.device, memory_format=self.memory_format)
        if self.amp_dtype is not None:
            logger.info('%s autocast with channels-last networks and batches', self.amp_dtype)
        perceptual_net = (perceptual_net if perceptual_net is not None else net_g.vgg_extractor).to(self.device)
        perceptual_net.requires_grad_(False)
        # After the line above: the perceptual net may be this encoder (then with zero weights).
        net_g.vgg_extractor.requires_grad_(options.train_encoder)
        if options.train_only:
            net_g.requires_grad_(False)
            for name in options.train_only:
                module = getattr(net_g, name, None)
                if not isinstance(module, nn.Module):
                    raise ValueError(f'train.train_only: the generator has no module {name!r}')
                module.requires_grad_(True)
        self.trainable_g = [p for p in net_g.parameters() if p.requires_grad]
        if distributed:
            ids = [self.device.index] if self.device.type == 'cuda' else None
            net_g = DistributedDataParallel(net_g, device_ids=ids,
                                            find_unused_parameters=options.find_unused_parameters)
            net_d = DistributedDataParallel(net_d, device_ids=ids)
            if net_d_comp is not None:
                net_d_comp = DistributedDataParallel(net_d_comp, device_ids=ids)
        self.net_g, self.net_d, self.net_d_comp = net_g, net_d, net_d_comp
        self.iteration = 0  # set by the trainer before each step (the D warm-up needs it)
        self.recon_loss = ReconstructionLoss(perceptual_net, options.pixel_weight, options.perceptual_weights,
                                             options.pixel_loss, options.psnr_floor_db, options.style_weights)
        self.components = components  # DiscriminatorOptions: the parts of the component style loss
        self.optimizer_g = torch.optim.Adam(self.trainable_g, lr=options.lr_g, betas=tuple(options.betas))
        d_params = list(unwrap(net_d).parameters())
        if net_d_comp is not None:
            d_params += list(unwrap(net_d_comp).parameters())
        self.optimizer_d = torch.optim.Adam(d_params, lr=options.lr_d, betas=tuple(options.betas))
        self.scheduler_g, self.scheduler_d = (make_scheduler(opt, options) for opt in (self.optimizer_g, self.optimizer_d))
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.ema = GeneratorEMA(unwrap(net_g), options.ema_decay) if options.ema_decay > 0 else None

    # ------------------------------------------------------------------ training
    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def train_mode(self) -> None:
        self.net_g.train()
        self.net_d.train()
        if self.net_d_comp is not None:
            self.net_d_comp.train()
        net_g = unwrap(self.net_g)
        if self.options.train_only:  # frozen parts in eval mode: their spectral-norm vectors must not move
            net_g.eval()
            for name in self.options.train_only:
                getattr(net_g, name).train()
        elif not self.options.train_encoder:
            net_g.vgg_extractor.eval()

    def optimize_parameters(self, batch: dict) -> dict:
        """One G step (none during the D warm-up), then one D step unless no discriminator is
        used; returns the loss values (floats)."""
        lq = batch['lq'].to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        gt = batch['gt'].to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        boxes = batch['boxes'].to(self.device, non_blocking=True)
        opt = self.options
        use_d = opt.use_discriminator
        if use_d and self.iteration < opt.d_warmup_iter:  # D learns against the starting G first
            with torch.no_grad(), self._autocast():
                output = self.net_g(lq, boxes)
            losses = self._step_discriminator(gt, output.detach(), boxes)
            self.scaler.update()
            return self._finite_values(losses)
        for _, net, _ in self._discriminators(boxes) if use_d else ():  # D is not updated by G's step
            unwrap(net).requires_grad_(False)
        with self._autocast():
            output = self.net_g(lq, boxes)
            l_rec, parts = self.recon_loss(output.float(), gt)
            losses = {'l_pix': parts['l_pix'], 'l_percep': parts['l_percep']}
            if any(opt.style_weights):
                losses['l_style'] = parts['l_style']
            l_g = l_rec
            if opt.component_style_weight > 0:
                l_comp_style = self._component_style(output.float(), gt, boxes)
                losses['l_comp_style'] = l_comp_style
                l_g = l_g + l_comp_style
            if use_d:
                l_g = l_g + self._generator_adversarial(output, gt, boxes, losses)
        self.optimizer_g.zero_grad(set_to_none=True)
        self.scaler.scale(l_g).backward()
        self.scaler.step(self.optimizer_g)
        losses['l_g_total'] = l_g
        if use_d:
            losses.update(self._step_discriminator(gt, output.detach(), boxes))
        self.scaler.update()
        if self.ema is not None:
            self.ema.update(unwrap(self.net_g))
        return self._finite_values(losses)

    def _component_style(self, output, gt, boxes) -> torch.Tensor:
        """The style loss (per-layer ``style_weights`` x ``component_style_weight``) on the component crops."""
        c = self.components
        weights = [w * self.options.component_style_weight for w in self.options.style_weights]
        total = output.new_zeros((), dtype=torch.float32)
        out_crops = component_crops(output, boxes, c.components, c.component_crop_sizes, c.component_enlarge)
        with torch.no_grad():
            gt_crops = component_crops(gt.float(), boxes, c.components, c.component_crop_sizes, c.component_enlarge)
        net = self.recon_loss.feature_net
        for out_crop, gt_crop in zip(out_crops, gt_crops):
            with torch.no_grad():
                gt_feats = net(gt_crop)
            total = total + style_loss(net(out_crop), gt_feats, weights) / len(out_crops)
        return total

    @staticmethod
    def _finite_values(losses: dict) -> dict:
        values = {k: float(v.detach()) for k, v in losses.items()}
        bad = [k for k, v in values.items() if not np.isfinite(v)]
        if bad:
            raise FloatingPointError(f'non-finite losses {bad}: {values}')
        return values

    def _no_sync(self, net):
        return net.no_sync() if self.distributed else contextlib.nullcontext()

    def _discriminators(self, boxes: torch.Tensor) -> list:
        """(loss-name part, discriminator, its extra forward arguments): the whole-face one, then the
        component one when there is one."""
        found = [('', self.net_d, ())]
        if self.net_d_comp is not None:
            found.append(('_comp', self.net_d_comp, (boxes,)))
        return found

    def _generator_adversarial(self, output, gt, boxes, losses: dict) -> torch.Tensor:
        """G's hinge losses (whole face, components) and feature matching; fills ``losses``."""
        opt = self.options
        fake_feats, real_feats = [], []
        total = output.new_zeros((), dtype=torch.float32)
        for part, net, args in self._discriminators(boxes):
            with self._no_sync(net):
                logits, feats = net(output, *args, return_features=True)
            weights = [opt.component_weight] * len(logits) if part else opt.adversarial_weights
            loss = hinge_g_loss([f.float() for f in logits], weights)
            losses['l_g_adv' if not part else f'l_g{part}'] = loss
            total = total + loss
            if opt.feature_matching_weight > 0:
                fake_feats += feats
                with torch.no_grad():
                    real_feats += net(gt, *args, return_features=True)[1]
        if fake_feats:
            losses['l_g_fm'] = opt.feature_matching_weight * feature_matching_loss(fake_feats, real_feats)
            total = total + losses['l_g_fm']
        return total

    def _step_discriminator(self, gt: torch.Tensor, fake: torch.Tensor, boxes: torch.Tensor) -> dict:
        """One D step (whole-face and component Ds), real and fake in one forward each (one DDP
        forward per backward); its losses (``l_d`` is their sum)."""
        n = gt.shape[0]
        both = torch.cat([gt, fake])
        values = {}
        with self._autocast():
            for part, net, args in self._discriminators(torch.cat([boxes, boxes])):
                unwrap(net).requires_grad_(True)
                logits = net(both, *args)
                real, fakes = [x[:n].float() for x in logits], [x[n:].float() for x in logits]
                values.update({f'l_d{part}': hinge_d_loss(real, fakes),
                               f'd{part}_real': torch.stack([x.mean() for x in real]).mean(),
                               f'd{part}_fake': torch.stack([x.mean() for x in fakes]).mean()})
            l_d = sum(v for k, v in values.items() if k.startswith('l_d'))
        self.optimizer_d.zero_grad(set_to_none=True)
        self.scaler.scale(l_d).backward()
        self.scaler.step(self.optimizer_d)
        return {**values, 'l_d': l_d}

    # ------------------------------------------------------------------ validation
    @torch.no_grad()
    def validate(self, loader, use_ema: bool = True, keep_images: int = 0):
        """Restore the validation set; returns (metrics dict, list of (name, lq, out, gt) uint8 images).

        metrics: ``recon_loss`` (Eq. 7 without the adversarial part, mean over faces), ``psnr``,
        ``ssim`` (RGB, 0-255, mean over faces). Uses the EMA weights when there are any.
        """
        net_g = unwrap(self.net_g)
        was_training = net_g.training
        net_g.eval()
        ema_ctx = self.ema.swapped_in(net_g) if (use_ema and self.ema is not None) else contextlib.nullcontext()
        with ema_ctx:
            scores = score_generator(net_g, loader, self.device, self.recon_loss, self._autocast, keep_images)
        net_g.train(was_training)
        return scores.means(), scores.images

    def step_schedulers(self, val_recon_loss: float | None = None) -> None:
        """Step the schedules: 'plateau' once per validation (with its loss), 'cosine' once per iteration (without)."""
        if (val_recon_loss is None) != (self.options.lr_schedule == 'cosine'):
            return
        schedulers = (self.scheduler_g, self.scheduler_d) if self.options.use_discriminator else (self.scheduler_g,)
        if self.options.use_discriminator and self.iteration < self.options.d_warmup_iter:
            schedulers = (self.scheduler_d,)  # G's optimiser does not step during the D warm-up
        for scheduler in schedulers:  # D's optimiser never steps without an adversarial loss
            scheduler.step() if val_recon_loss is None else scheduler.step(val_recon_loss)

    def learning_rates(self) -> dict:
        return {'lr_g': self.optimizer_g.param_groups[0]['lr'], 'lr_d': self.optimizer_d.param_groups[0]['lr']}

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        state = {'net_g': unwrap(self.net_g).state_dict(), 'net_d': unwrap(self.net_d).state_dict(),
                 'optimizer_g': self.optimizer_g.state_dict(), 'optimizer_d': self.optimizer_d.state_dict(),
                 'scheduler_g': self.scheduler_g.state_dict(), 'scheduler_d': self.scheduler_d.state_dict(),
                 'scaler': self.scaler.state_dict(), 'ema': self.ema.shadow if self.ema is not None else None}
        if self.net_d_comp is not None:
            state['net_d_comp'] = unwrap(self.net_d_comp).state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        unwrap(self.net_g).load_state_dict(state['net_g'])
        unwrap(self.net_d).load_state_dict(state['net_d'])
        if self.net_d_comp is not None:
            if 'net_d_comp' not in state:
                raise ValueError('the training state has no component discriminator but discriminator.components is set')
            unwrap(self.net_d_comp).load_state_dict(state['net_d_comp'])
        self.optimizer_g.load_state_dict(state['optimizer_g'])
        self.optimizer_d.load_state_dict(state['optimizer_d'])
        self.scheduler_g.load_state_dict(state['scheduler_g'])
        self.scheduler_d.load_state_dict(state['scheduler_d'])
        self.scaler.load_state_dict(state['scaler'])
        if self.ema is not None:
            if state.get('ema') is None:
                raise ValueError('the training state has no EMA weights but train.ema_decay > 0')
            self.ema.shadow = {k: v.to(self.device) for k, v in state['ema'].items()}

