"""Resumable training states: written atomically, found by iteration, loaded without pickles.

A state file ``training_states/<iteration>.state`` holds the model state (G, D, optimisers,
schedulers, AMP scaler, EMA), the loop position (iteration, epoch, batches done in the epoch) and
the RNG states of every process (python, numpy, torch, CUDA). It is read with
``torch.load(weights_only=True)``: every entry is a tensor, number, string, list or dict.
"""
from __future__ import annotations

import logging
import random
import re
from pathlib import Path

import numpy as np
import torch

from dfdnet.utils.files import atomic_torch_save, load_torch_file

logger = logging.getLogger(__name__)

_STATE_NAME = re.compile(r'^(\d+)\.state$')


def get_rng_state() -> dict:
    """RNG states of this process in a weights_only-loadable form."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    state = {'python': [py_version, list(py_state), py_gauss],
             'numpy': [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
             'torch': torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    py_version, py_state, py_gauss = state['python']
    random.setstate((py_version, tuple(py_state), py_gauss))
    name, keys, pos, has_gauss, cached = state['numpy']
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


def save_training_state(folder, iteration: int, state: dict, keep: int = 2) -> Path:
    """Write ``<folder>/<iteration>.state`` atomically; remove all but the newest ``keep`` states."""
    folder = Path(folder)
    path = folder / f'{iteration}.state'
    atomic_torch_save(state, path)
    for old in list_states(folder)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    return path


def list_states(folder) -> list[Path]:
    """State files in ``folder`` sorted by iteration (temporary files of a killed write are ignored)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m[1]), p) for p in folder.iterdir() if (m := _STATE_NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def load_training_state(path, device='cpu') -> dict:
    """Read a state file; a truncated or foreign file raises ``ValueError`` naming it."""
    return load_torch_file(path, 'training state', ValueError, map_location=device)


def load_latest_state(folder, device='cpu') -> tuple[Path, dict] | None:
    """The newest readable state of ``folder`` as (path, state); None when there is none at all.

    A state that cannot be read (e.g. truncated by a full disk) is logged and the previous one
    is tried; if none can be read, ``ValueError`` names them all.
    """
    states = list_states(folder)
    errors = []
    for path in reversed(states):
        try:
            state = load_training_state(path, device)
        except ValueError as exc:
            logger.error('%s; trying the previous training state', exc)
            errors.append(str(exc))
            continue
        if errors:
            logger.warning('resuming from %s, the newest readable training state', path)
        return path, state
    if errors:
        raise ValueError(f'no readable training state in {folder}: ' + '; '.join(errors))
    return None
