"""Generators with seeded random weights in the released layout, for parity checks and timing.

Nothing here is a usable model: the weights and atoms are random. Spectral-norm vectors are
converged (as in a trained checkpoint) and the confidence blocks can be biased so that the
chosen atoms visibly shape the output.
"""
from __future__ import annotations

import torch

from dfdnet.archs.dfdnet_arch import DFDNetGenerator, GeneratorConfig
from dfdnet.archs.dictionary import DictionaryBank

# Component boxes of a typical aligned 512-px face (from a released landmark file), (4, 4)
# ``[x1, y1, x2, y2]`` in pixels: left eye, right eye, nose, mouth.
TYPICAL_BOXES = [[146, 182, 225, 261], [290, 180, 370, 260], [237, 298, 279, 340], [208, 335, 303, 430]]


@torch.no_grad()
def condition_spectral_norm_(model: torch.nn.Module, iters: int = 20) -> torch.nn.Module:
    """Converge every stored spectral-norm (u, v) pair by ``iters`` power iterations.

    Random u, v give an arbitrary eval-mode sigma (tiny or negative: exploding outputs);
    converged ones give the top singular value, as in a trained checkpoint.
    """
    for module in model.modules():
        if hasattr(module, 'weight_orig') and hasattr(module, 'weight_u'):
            weight = module.weight_orig.flatten(1)
            u = module.weight_u
            for _ in range(iters):
                v = torch.nn.functional.normalize(weight.T @ u, dim=0)
                u = torch.nn.functional.normalize(weight @ v, dim=0)
            module.weight_u.copy_(u)
            module.weight_v.copy_(v)
    return model


def random_dictionary_bank(config: GeneratorConfig, num_atoms: int, seed: int = 0) -> DictionaryBank:
    """A bank of ``num_atoms`` standard-normal atoms per part and level (float32, in memory)."""
    generator = torch.Generator().manual_seed(seed)
    atoms = {key: torch.randn(num_atoms, channels, size, size, generator=generator)
             for key, (channels, size) in config.dictionary_layout().items()}
    return DictionaryBank(atoms, standardized=config.use_cadain)


def random_generator(config: GeneratorConfig | None = None, seed: int = 0, num_atoms: int | None = None,
                     confidence_bias: float | None = 1.0) -> DFDNetGenerator:
    """An inference generator (eval, spectral norm folded, channels-last, CPU) with seeded weights.

    ``num_atoms``: attach random dictionaries of this K (seed ``seed + 1``); None: none.
    ``confidence_bias``: the confidence blocks' output bias, so that the confidence is ~1 and the
    atoms matter (random weights otherwise give ~0); None keeps the initialisation.
    """
    config = config or GeneratorConfig()
    torch.manual_seed(seed)
    model = condition_spectral_norm_(DFDNetGenerator(config)).eval()
    if confidence_bias is not None:
        with torch.no_grad():
            for block in model.attn_blocks.values():
                block[2].bias.fill_(confidence_bias)
    model.fold_spectral_norm().to(memory_format=torch.channels_last)
    if num_atoms is not None and config.dft_levels:
        model.set_dictionaries(random_dictionary_bank(config, num_atoms, seed + 1))
    return model


def save_random_checkpoint(path, width: int = 64):
    """Write (once) a generator checkpoint in this project's format, released layout at ``width``,
    with seeded random weights and converged spectral norms (finite outputs): timing only.
    Returns ``path`` as a ``Path``."""
    from pathlib import Path

    from dfdnet.archs.checkpoint import save_generator

    path = Path(path)
    if not path.exists():
        torch.manual_seed(0)
        save_generator(condition_spectral_norm_(DFDNetGenerator(GeneratorConfig(width=width))), path)
    return path
