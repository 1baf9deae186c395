"""Export a trained generator and its dictionaries as a compact, self-describing model folder (the
one shipped in ``dfdnet/pretrained/default``).

The folder holds ``net_g.pth`` (this project's checkpoint format, float16 or int8 weights),
optionally ``net_g_sharp.pth`` (the modules an adversarial fine-tune of it changed, for the
``--fidelity`` interpolation),
``dictionaries/`` (the 16 released-layout ``*_center.npy`` files in float16, with the builder's
``dictionary.json``) and ``model.json`` (provenance, file hashes, and how far the stored weights
are from the float32 model they came from).
"""
from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

import numpy as np
import torch

from dfdnet.archs.fidelity import AutoFidelity
from dfdnet.archs.checkpoint import check_finite, load_generator, load_state_strict, read_checkpoint, save_generator
from dfdnet.archs.dfdnet_arch import DFDNetGenerator
from dfdnet.archs.dictionary import dictionary_file_name
from dfdnet.dictionary.features import file_sha256
from dfdnet.utils.files import atomic_path

logger = logging.getLogger(__name__)


def export_model(checkpoint, dict_dir, output, description: str = '', provenance: dict | None = None,
                 weights: str = 'float16', sharp_checkpoint=None, default_fidelity=1.0,
                 auto_fidelity: AutoFidelity | None = None) -> dict:
    """Export ``checkpoint`` + ``dict_dir`` to the folder ``output``; returns the ``model.json`` record.
    ``weights``: how ``net_g.pth`` stores them, 'float16' or 'int8' (see ``save_generator``).
    ``sharp_checkpoint``: an adversarial fine-tune of ``checkpoint``; the modules it changed are
    written to ``net_g_sharp.pth`` (same storage) and ``default_fidelity`` (a number, or 'auto' with
    the rule ``auto_fidelity``, default ``AutoFidelity()``) to ``model.json``."""
    checkpoint, dict_dir, output = Path(checkpoint), Path(dict_dir), Path(output)
    if default_fidelity != 'auto' and not 0.0 <= float(default_fidelity) <= 1.0:
        raise ValueError(f'default fidelity must be within [0, 1] or auto, got {default_fidelity}')
    model = load_generator(checkpoint, dict_dir, fold_spectral_norm=False)
    config = model.config
    (output / 'dictionaries').mkdir(parents=True, exist_ok=True)
    save_generator(model, output / 'net_g.pth', weights=weights, source=str(checkpoint))
    fidelity = None
    if sharp_checkpoint is not None:
        sharp_state, _, _ = read_checkpoint(sharp_checkpoint)  # whole, or only the modules it trained
        check_finite(sharp_state, sharp_checkpoint)
        sharp = DFDNetGenerator(config)
        load_state_strict(sharp, {**model.state_dict(), **sharp_state}, str(sharp_checkpoint))
        changed = changed_modules(model, sharp)
        save_generator(sharp, output / 'net_g_sharp.pth', weights=weights, modules=changed, source=str(sharp_checkpoint))
        fidelity = {'default': default_fidelity if default_fidelity == 'auto' else float(default_fidelity),
                    'auto': (auto_fidelity or AutoFidelity()).to_dict(), 'sharp_checkpoint': 'net_g_sharp.pth',
                    'sharp_source': str(sharp_checkpoint), 'sharp_modules': changed}
    elif (output / 'net_g_sharp.pth').exists():
        (output / 'net_g_sharp.pth').unlink()  # a previous export's, not a fine-tune of this generator
    for part, fsize in config.dictionary_layout():
        name = dictionary_file_name(part, fsize)
        atoms = np.load(dict_dir / name, allow_pickle=False)
        with atomic_path(output / 'dictionaries' / name) as tmp:
            with open(tmp, 'wb') as fh:
                np.save(fh, atoms.astype(np.float16))
    if (dict_dir / 'dictionary.json').is_file():
        record = relative_paths(json.loads((dict_dir / 'dictionary.json').read_text()))
        with atomic_path(output / 'dictionaries' / 'dictionary.json') as tmp:
            tmp.write_text(json.dumps(record, indent=1) + '\n')
    exported = load_generator(output / 'net_g.pth', output / 'dictionaries')
    difference = _stored_difference(model, exported)
    files = sorted(p for p in output.rglob('*') if p.is_file() and p.name != 'model.json')
    record = {
        'description': description,
        'config': config.to_dict(),
        'parameters': sum(p.numel() for p in model.parameters()),
        'num_atoms': int(np.load(output / 'dictionaries' / dictionary_file_name(*next(iter(config.dictionary_layout()))),
                                 mmap_mode='r').shape[0]),
        'source_checkpoint': str(checkpoint), 'source_dictionaries': str(dict_dir),
        'stored_weights': weights,
        'stored_max_abs_difference_255': difference,
        **({'fidelity': fidelity} if fidelity else {}),
        'provenance': relative_paths(provenance or {}),
        'files': {str(p.relative_to(output)): {'bytes': p.stat().st_size, 'sha256': file_sha256(p)} for p in files},
    }
    record['total_bytes'] = sum(f['bytes'] for f in record['files'].values())
    with atomic_path(output / 'model.json') as tmp:
        tmp.write_text(json.dumps(record, indent=1) + '\n')
    logger.info('exported %s (+ %s) to %s: %.1f MB, %s output within %.3f/255 of float32', checkpoint,
                dict_dir, output, record['total_bytes'] / 1e6, weights, difference)
    return record


def changed_modules(model, fine_tuned) -> list:
    """Top-level module names whose tensors differ between two generators of one configuration."""
    if model.config != fine_tuned.config:
        raise ValueError('the sharp checkpoint has another generator configuration than the checkpoint')
    theirs = fine_tuned.state_dict()
    return sorted({k.split('.')[0] for k, v in model.state_dict().items() if not torch.equal(v, theirs[k])})


_ABSOLUTE_PATH = re.compile(r'(?<![\w.~:/])/[^\s"\',:;]+')  # not inside 'a/b', '~/x' or 'http://'
_INTERPRETER = re.compile(r'python[\d.]*')


def relative_paths(value, root=None):
    """``value`` (str, list or dict, recursively) with absolute paths made relative to the project
    root (the current folder by default) and interpreter paths shortened to ``python``: a shipped
    record must not carry one machine's paths."""
    root = Path(root or Path.cwd()).resolve()
    if isinstance(value, dict):
        return {k: relative_paths(v, root) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [relative_paths(v, root) for v in value]
    if not isinstance(value, str):
        return value

    def fix(match):
        path = match.group(0)
        return 'python' if _INTERPRETER.fullmatch(Path(path).name) else os.path.relpath(path, root)

    return _ABSOLUTE_PATH.sub(fix, value)


def experiment_record(folder: Path) -> dict:
    """Command lines, last options file and validation lines of a ``train.py`` run folder."""
    if not folder.is_dir():
        raise FileNotFoundError(f'experiment folder not found: {folder}')
    options = sorted(folder.glob('options_*.yml'))
    logs = sorted(folder.glob('train_*.log'))
    validation = [line.split(' INFO ')[-1] for log in logs for line in log.read_text().splitlines()
                  if 'validation at iter' in line]
    return {'commands': (folder / 'command.txt').read_text().splitlines() if (folder / 'command.txt').is_file() else [],
            'options': options[-1].read_text() if options else None,
            'validation': validation}


# Component boxes of a typical aligned 512-px face (left eye, right eye, nose, mouth), scaled to the model.
TYPICAL_BOXES_512 = np.array([[160, 210, 240, 270], [272, 210, 352, 270], [226, 250, 286, 330], [194, 330, 318, 400]])


@torch.no_grad()
def _stored_difference(reference, exported) -> float:
    """Max |output difference| (0-255 scale) on a fixed smooth test image with typical boxes."""
    size = reference.config.image_size
    generator = torch.Generator().manual_seed(0)
    image = torch.nn.functional.interpolate(torch.rand(1, 3, size // 16, size // 16, generator=generator) * 2 - 1,
                                            size=(size, size), mode='bicubic', align_corners=False).clamp(-1, 1)
    boxes = torch.as_tensor(TYPICAL_BOXES_512 * size // 512)[None]
    reference.eval()
    return float((reference(image, boxes) - exported(image, boxes)).abs().max()) * 127.5
