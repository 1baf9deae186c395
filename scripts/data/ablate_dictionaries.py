"""Write a copy of a dictionary folder whose atoms carry no face detail, to measure what the
dictionaries' content is worth (``python -m dfdnet.cli.validate --dict_dir`` on the copy).

Modes:
* ``noise``: each atom becomes Gaussian noise with the atom's own per-channel mean and standard
  deviation (what CAdaIN keeps), so only the spatial structure is lost;
* ``mean``: every atom becomes the mean atom of its dictionary (K identical, blurred parts).

    PYTHONPATH=. python scripts/data/ablate_dictionaries.py --dict_dir dfdnet/pretrained/default/dictionaries \
        --mode noise --output experiments/dict_ablation/noise
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np


from dfdnet.utils.files import atomic_path


def ablate(atoms: np.ndarray, mode: str, rng: np.random.Generator) -> np.ndarray:
    """(K, C, s, s) atoms -> the same shape and dtype, without their detail."""
    x = atoms.astype(np.float64)
    if mode == 'mean':
        out = np.broadcast_to(x.mean(0, keepdims=True), x.shape)
    else:
        mean = x.mean((2, 3), keepdims=True)
        std = x.std((2, 3), keepdims=True)
        out = mean + std * rng.standard_normal(x.shape)
    return out.astype(atoms.dtype)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--dict_dir', required=True, help='a dictionary folder (<part>_<size>_center.npy files)')
    parser.add_argument('--mode', choices=('noise', 'mean'), required=True)
    parser.add_argument('--output', required=True, help='new folder (must not exist)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    source, output = Path(args.dict_dir), Path(args.output)
    files = sorted(source.glob('*_center.npy'))
    if not files:
        parser.error(f'{source}: no *_center.npy dictionary files')
    if output.exists():
        parser.error(f'{output} exists: give a new folder')
    output.mkdir(parents=True)
    rng = np.random.default_rng(args.seed)
    for path in files:
        with atomic_path(output / path.name) as tmp:
            with open(tmp, 'wb') as fh:
                np.save(fh, ablate(np.load(path), args.mode, rng))
    if (source / 'dictionary.json').is_file():
        shutil.copy2(source / 'dictionary.json', output / 'dictionary.json')
    (output / 'ablation.json').write_text(json.dumps({'source': str(source), 'mode': args.mode, 'seed': args.seed}))
    print(f'{len(files)} dictionaries ({args.mode}) written to {output}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
