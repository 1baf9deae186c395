"""Generator checkpoints: the released file, the BasicSR port and this project's own format.

The format is detected from the file's contents:

* released ``latest_net_G.pth``: a plain state dict with ``VggExtract.*``, ``le_256.*``, ``up0.*`` ...
* BasicSR ``DFDNet_official-*.pth``: ``{'params': state dict}`` with ``vgg_extractor.*`` names
  (the names this project's modules use);
* ours: ``{'format': 'dfdnet-generator', 'config': {...}, 'params': state dict, ...}``.

Loading is strict: every key the network needs must be present and every key in the file must
be used, except the ones the released file carries but the network never reads (the VGG
classifier, the duplicate ``VggExtract.features.*`` tensors and the ``to_rgb*`` blocks).
"""
from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path

import torch

from dfdnet.archs.blocks import Blur, binomial_kernel
from dfdnet.archs.dfdnet_arch import DFDNetGenerator, GeneratorConfig
from dfdnet.archs.dictionary import load_dictionaries
from dfdnet.archs.fidelity import AutoFidelity, FidelityBlend
from dfdnet.archs.vgg import vgg_layer_names
from dfdnet.errors import CheckpointError
from dfdnet.utils.files import atomic_torch_save, load_torch_file
from dfdnet.utils.precision import precision_dtype, resolve_precision
from dfdnet.utils.tensors import all_finite

logger = logging.getLogger(__name__)

OWN_FORMAT = 'dfdnet-generator'
_PART_CODES = {'le': 'left_eye', 're': 'right_eye', 'no': 'nose', 'mo': 'mouth'}
_RELEASED_IGNORED = re.compile(r'^(VggExtract\.model\.classifier\.|VggExtract\.features\.|to_rgb\d)')
_BLUR = re.compile(r'^up([0-3])\.conv1\.0\.(weight|weight_flip)$')


def _released_rules():
    vgg19 = vgg_layer_names('vgg19')
    return [
        (r'^VggExtract\.RGB_mean$', lambda m: 'vgg_extractor.mean'),
        (r'^VggExtract\.RGB_std$', lambda m: 'vgg_extractor.std'),
        (r'^VggExtract\.model\.features\.(\d+)\.(.+)$',
         lambda m: f'vgg_extractor.vgg_net.{vgg19[int(m[1])]}.{m[2]}'),
        (r'^(le|re|no|mo)_(\d+)\.(.+)$', lambda m: f'attn_blocks.{_PART_CODES[m[1]]}_{m[2]}.{m[3]}'),
        (r'^MSDilate\.conv([1-4])\.(.+)$', lambda m: f'multi_scale_dilation.conv_blocks.{int(m[1]) - 1}.{m[2]}'),
        (r'^MSDilate\.convi\.(.+)$', lambda m: f'multi_scale_dilation.conv_fusion.{m[1]}'),
        (r'^up([0-3])\.ScaleModel1\.(.+)$', lambda m: f'upsample{m[1]}.scale_block.{m[2]}'),
        (r'^up([0-3])\.ShiftModel1\.(.+)$', lambda m: f'upsample{m[1]}.shift_block.{m[2]}'),
        (r'^up([0-3])\.(conv1|convup)\.(.+)$', lambda m: f'upsample{m[1]}.{m[2]}.{m[3]}'),
        (r'^up4\.([23])\.Model\.(.+)$', lambda m: f'upsample4.{m[1]}.body.{m[2]}'),
        (r'^up4\.(.+)$', lambda m: f'upsample4.{m[1]}'),
    ]


def convert_released_state_dict(state: dict) -> dict:
    """Released key names -> this project's (BasicSR) names.

    Unused released keys are dropped; the fixed blur kernels are checked, not loaded. Keys that
    no rule knows are kept as they are, so that strict loading reports them.
    """
    expected_blur = torch.tensor([[1., 2., 1.], [2., 4., 2.], [1., 2., 1.]]) / 16
    rules = [(re.compile(p), f) for p, f in _released_rules()]
    out = {}
    for key, value in state.items():
        if _RELEASED_IGNORED.match(key):
            continue
        if _BLUR.match(key):
            if not torch.allclose(value.float().cpu(), expected_blur.expand_as(value), atol=1e-6):
                raise CheckpointError(f'{key} is not the fixed 3x3 binomial blur kernel')
            continue
        for pattern, rename in rules:
            match = pattern.match(key)
            if match:
                key = rename(match)
                break
        out[key] = value
    return out


def _strip_module_prefix(state: dict) -> dict:
    if state and all(k.startswith('module.') for k in state):
        return {k[len('module.'):]: v for k, v in state.items()}
    return state


def read_checkpoint(path) -> tuple[dict, GeneratorConfig, str]:
    """Read a generator checkpoint of any supported format.

    Returns (state dict in this project's names, config, format name); the tensors are
    memory-mapped from the file (copy-on-write) until copied into a network. Raises
    ``CheckpointError`` naming the path if the file is missing, unreadable or unrecognised.
    """
    path = Path(path)
    # Mapped, not read: only the tensors the network uses are ever paged in (the released file
    # stores 240 M parameters, the network uses 113 M).
    data = load_torch_file(path, 'generator checkpoint', CheckpointError, mmap=True)
    if not isinstance(data, dict):
        raise CheckpointError(f'{path}: expected a state dict, got {type(data).__name__}')
    if data.get('format') == OWN_FORMAT:
        return _own_params(path, data), GeneratorConfig(**data.get('config', {})), OWN_FORMAT
    if 'params' in data or 'params_ema' in data:
        state = data.get('params_ema', data.get('params'))
        return _strip_module_prefix(dict(state)), GeneratorConfig(), 'basicsr'
    state = _strip_module_prefix(dict(data))
    if any(k.startswith('VggExtract.') for k in state):
        return convert_released_state_dict(state), GeneratorConfig(), 'released'
    if any(k.startswith('vgg_extractor.') for k in state):
        return state, GeneratorConfig(), 'basicsr'
    raise CheckpointError(f'{path}: not a DFDNet generator checkpoint (no VggExtract.* or vgg_extractor.* keys; '
                          f'first keys: {list(state)[:5]})')


def check_finite(state: dict, source) -> None:
    """``CheckpointError`` naming ``source`` and the first tensors holding NaN or Inf values."""
    bad = [k for k, v in state.items() if v.is_floating_point() and not all_finite(v)]
    if bad:
        raise CheckpointError(f'{source}: {len(bad)} weight tensor(s) hold NaN or Inf values (first: '
                              f'{", ".join(bad[:3])}); the file is corrupt or its training diverged')


class _SkipMetaInit(torch.overrides.TorchFunctionMode):
    """Skips what initialises meta tensors, which have no values: the in-place initialisers
    (``torch.nn.init.*_``, ``Tensor.normal_`` / ``uniform_``) and the normalisation of the
    spectral-norm vectors (same shape out); on meta tensors some would first import torch's compiler
    stack, start-up time spent on nothing."""

    _INITIALISERS = frozenset([torch.Tensor.normal_, torch.Tensor.uniform_, torch.nn.functional.normalize] +
                              [f for name, f in vars(torch.nn.init).items() if name.endswith('_') and callable(f)])

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in self._INITIALISERS and args and isinstance(args[0], torch.Tensor) and args[0].is_meta:
            return args[0]
        return func(*args, **(kwargs or {}))


def generator_to_load(config: GeneratorConfig) -> DFDNetGenerator:
    """A generator whose parameters are allocated (on the CPU, 4-D ones channels-last) but not
    initialised, for a strict load to fill (initialising 113 M weights at random would take longer
    than loading them). Its fixed blur kernels, which no checkpoint holds, are made as the
    constructor makes them."""
    with torch.device('meta'), _SkipMetaInit():
        model = DFDNetGenerator(config)
    # Module.to_empty, without its meta-tensor path (empty_like), which imports sympy; 4-D tensors
    # channels-last, the layout the model runs in
    model._apply(lambda t: torch.empty(t.shape, dtype=t.dtype, memory_format=torch.channels_last if t.ndim == 4
                                       else torch.contiguous_format))
    for module in model.modules():
        if isinstance(module, Blur):
            module.kernel = binomial_kernel(module.kernel.shape[0])
        elif module._non_persistent_buffers_set:
            raise RuntimeError(f'{type(module).__name__} has buffers that no checkpoint restores: '
                               f'{sorted(module._non_persistent_buffers_set)}')
    return model


def load_state_strict(model: DFDNetGenerator, state: dict, source: str = 'state dict') -> None:
    """Load ``state`` into ``model``; any missing or unexpected key is a ``CheckpointError``."""
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise CheckpointError(f'{source}: {exc}') from exc
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(f'{source} does not match the DFDNet generator:\n'
                              f'  missing keys ({len(result.missing_keys)}): {result.missing_keys}\n'
                              f'  unexpected keys ({len(result.unexpected_keys)}): {result.unexpected_keys}')


def load_generator(checkpoint, dict_dir, device='cpu', config: GeneratorConfig | None = None,
                   fold_spectral_norm: bool = True, dft_levels=None, precision: str = 'fp32',
                   sharp_checkpoint=None, fidelity=1.0, backend: str = 'torch', cache_dir=None):
    """Build the generator from a checkpoint and a dictionary folder/file, in eval mode on ``device``.

    ``config`` overrides the checkpoint's own (released and BasicSR files carry none: the
    released architecture is assumed). Nothing runs with random weights: every failure raises.
    ``fold_spectral_norm`` (inference) computes the spectral-norm weights once from the stored
    vectors, as eval mode would at each call; pass False to keep the trainable layout.
    ``dft_levels`` overrides which levels use the dictionaries (``()``: none, the "0 DFT" ablation).
    ``precision``: 'fp32' (exact; the parity tests), 'bf16' or 'fp16' (convolutions under
    autocast, dictionary atoms stored in that dtype; atom matching and the residual stay float32),
    or 'auto' (bf16 where the device has it natively: a CUDA GPU with bf16, a CPU with AMX-BF16 or
    AVX512-BF16; fp32 elsewhere).
    ``sharp_checkpoint`` / ``fidelity``: network interpolation (ESRGAN) with a perceptual fine-tune
    of ``checkpoint``: every weight is ``fidelity * checkpoint's + (1 - fidelity) * sharp's``, both
    with their spectral norm folded; the sharp file may hold only the modules the fine-tune trained.
    ``fidelity`` 'auto' (or an ``AutoFidelity`` rule) gives each face its own value from its input
    (``dfdnet.archs.fidelity``; the photo pipeline's batches apply it). With a sharp checkpoint the
    model carries ``fidelity_blend`` (a ``FidelityBlend``) to change fidelity without reloading.
    ``backend``: 'torch' (this module), 'openvino' or 'onnxruntime' (a ``RuntimeGenerator``, called the
    same way, converted once and cached under ``cache_dir``; CPU only, ``dfdnet.archs.runtime``), or
    'auto' (the fastest measured for this model, device and precision; torch when none was measured).
    """
    if backend != 'torch':
        from dfdnet.archs.runtime import BACKENDS, choose_backend, load_runtime

        if backend not in BACKENDS:
            raise ValueError(f'backend must be one of {BACKENDS}, got {backend!r}')
        precision = resolve_precision(precision, device)
        if backend == 'auto':
            backend = choose_backend(checkpoint, dict_dir, device, precision, cache_dir, fidelity=fidelity,
                                     sharp_checkpoint=sharp_checkpoint, dft_levels=dft_levels)
        if backend != 'torch':
            if torch.device(device).type != 'cpu':
                raise ValueError(f'--backend {backend} runs on the CPU; use --backend torch on {device}')
            if config is not None or not fold_spectral_norm:
                raise ValueError(f'--backend {backend} runs the checkpoint as stored (no config, folded)')
            return load_runtime(checkpoint, dict_dir, backend, precision, cache_dir, sharp_checkpoint, fidelity,
                                dft_levels)
    auto = None
    if isinstance(fidelity, AutoFidelity) or fidelity == 'auto':
        auto, fidelity = (fidelity if isinstance(fidelity, AutoFidelity) else AutoFidelity()), 1.0
        if sharp_checkpoint is None:
            raise ValueError('fidelity auto needs a sharp checkpoint to interpolate towards')
    if not 0.0 <= float(fidelity) <= 1.0:
        raise ValueError(f'fidelity must be within [0, 1], got {fidelity}')
    if sharp_checkpoint is not None and not fold_spectral_norm:
        raise ValueError('network interpolation (sharp_checkpoint) needs fold_spectral_norm=True')
    precision = resolve_precision(precision, device)
    state, file_config, fmt = read_checkpoint(checkpoint)
    config = config or file_config
    if dft_levels is not None:  # e.g. () for the "0 DFT" ablation of a trained model
        config = dataclasses.replace(config, dft_levels=tuple(dft_levels))
    model = generator_to_load(config)
    # A config with fewer DFT levels (e.g. the "0 DFT" ablation) leaves those confidence blocks unused.
    unused = sorted({k.split('.')[1] for k in state if k.startswith('attn_blocks.')} - set(model.attn_blocks))
    if unused and set(config.dft_levels) < set(file_config.dft_levels):
        logger.info('%s: confidence blocks of the levels without DFT are not used: %s', checkpoint, unused)
        state = {k: v for k, v in state.items() if not (k.startswith('attn_blocks.') and k.split('.')[1] in unused)}
    check_finite(state, checkpoint)
    load_state_strict(model, state, source=str(checkpoint))
    model.eval()
    if fold_spectral_norm:
        model.fold_spectral_norm()
    blend = None
    if sharp_checkpoint is not None:
        blend = FidelityBlend(model, _sharp_weights(model, state, sharp_checkpoint), auto)
        blend.apply(model, float(fidelity))
        logger.info('weights interpolated with %s at fidelity %s', sharp_checkpoint,
                    'auto (per face)' if auto else f'{float(fidelity):.2f}')
    del state
    model.to(device, memory_format=torch.channels_last)
    model.fidelity_blend = blend.to(device) if blend is not None else None
    model.precision = precision
    model.checkpoint_format = fmt  # the photo pipeline's resampling follows it (resolve_resampling)
    if config.dft_levels:
        # atoms in the run's precision (matching still scores in float32), memory-mapped from the atom cache
        model.set_dictionaries(load_dictionaries(dict_dir, config.dictionary_layout(), standardized=config.use_cadain,
                                                 dtype=precision_dtype(precision)))
    logger.info('loaded %s generator %s (encoder %s, %d px) on %s in %s', fmt, checkpoint, config.encoder,
                config.image_size, device, precision)
    return model


def _sharp_weights(model: DFDNetGenerator, state: dict, sharp_checkpoint) -> dict:
    """The folded state dict of ``model``'s fine-tune in ``sharp_checkpoint`` (which may hold only the
    modules it trained; the others come from ``state``, the file ``model`` was loaded from)."""
    sharp_state, _, _ = read_checkpoint(sharp_checkpoint)
    unknown = sorted(set(sharp_state) - set(state))
    if [k for k in unknown if not k.startswith('attn_blocks.')]:  # confidence blocks of ablated levels may go
        raise CheckpointError(f'{sharp_checkpoint}: not a fine-tune of the same generator (keys it lacks: {unknown[:5]})')
    for key in set(sharp_state) & set(state):
        if sharp_state[key].shape != state[key].shape:
            raise CheckpointError(f'{sharp_checkpoint}: {key} has shape {tuple(sharp_state[key].shape)}, the '
                                  f'generator {tuple(state[key].shape)}')
    sharp = generator_to_load(model.config)
    load_state_strict(sharp, {**state, **{k: v for k, v in sharp_state.items() if k in state}}, str(sharp_checkpoint))
    sharp.eval().fold_spectral_norm()
    check_finite(sharp.state_dict(), sharp_checkpoint)
    return sharp.state_dict()


STORED_WEIGHTS = ('float32', 'float16', 'int8')


def _int8_per_channel(weight: torch.Tensor):
    """(int8 tensor, float32 scale of shape (out, 1, ...)): symmetric, one scale per output channel."""
    flat = weight.float().reshape(weight.shape[0], -1)
    scale = (flat.abs().amax(1) / 127).clamp_min(torch.finfo(torch.float32).tiny)
    values = torch.round(flat / scale[:, None]).clamp_(-127, 127).to(torch.int8).reshape(weight.shape)
    return values, scale.reshape((-1,) + (1,) * (weight.ndim - 1))


def save_generator(model: DFDNetGenerator, path, weights: str = 'float32', modules=None, **metadata) -> None:
    """Write this project's checkpoint format atomically (dictionaries are not included).

    ``weights``: 'float32'; 'float16' (half the file); or 'int8' (a quarter: every weight matrix
    or kernel in int8 with one float32 scale per output channel; biases and buffers such as the
    encoder's input mean and std in float16).
    ``load_generator`` computes in float32 whatever is stored. The spectral-norm vectors stay
    float32: sigma is sensitive to their precision. ``modules``: store only these top-level modules
    (a fine-tune's trained part, read as ``load_generator``'s ``sharp_checkpoint``).
    """
    if weights not in STORED_WEIGHTS:
        raise ValueError(f'weights must be one of {", ".join(STORED_WEIGHTS)}, got {weights!r}')
    if getattr(model, 'spectral_norm_folded', False):
        raise ValueError('cannot save a generator whose spectral norm was folded for inference; '
                         'load it with fold_spectral_norm=False')
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()
             if modules is None or k.split('.')[0] in set(modules)}
    if not state:
        raise ValueError(f'the generator has none of the modules {modules}')
    if modules is not None:
        metadata['modules'] = sorted(set(modules))
    scales = {}
    for key, value in state.items():
        if not value.is_floating_point() or key.endswith(('weight_u', 'weight_v')) or weights == 'float32':
            continue
        if weights == 'int8' and value.ndim >= 2 and key.endswith(('.weight', '.weight_orig')):
            state[key], scales[key] = _int8_per_channel(value)
        else:
            state[key] = value.half()
    extra = {'version': 2, 'int8_scales': scales} if scales else {'version': 1}
    atomic_torch_save({'format': OWN_FORMAT, **extra, 'config': model.config.to_dict(),
                       'params': state, **metadata}, path)


def _own_params(path: Path, data: dict) -> dict:
    """The float state dict of this project's format (int8 tensors scaled back to float32)."""
    if data.get('version', 1) > 2:
        raise CheckpointError(f'{path}: checkpoint format version {data["version"]} is newer than this code reads (2)')
    state = _strip_module_prefix(dict(data['params']))
    scales = data.get('int8_scales', {})
    for key, value in state.items():
        if value.dtype == torch.int8:
            if key not in scales:
                raise CheckpointError(f'{path}: {key} is stored in int8 without its scale')
            state[key] = value.float() * scales[key]
    return state
