"""Options of ``python -m dfdnet.cli.make_testset`` / ``dfdnet.data.testset.build_testset``, declared
once (light imports: the command's ``--help`` needs no OpenCV or torch)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dfdnet.utils.options import option

SHARED_DATA = Path(os.environ.get('DFDNET_SHARED_DATA', Path(__file__).resolve().parents[2].parent / 'shared' / 'data'))
HELD_OUT_SOURCES = (SHARED_DATA / 'faces_hq' / 'ffhq_gpen', SHARED_DATA / 'faces_hq' / 'ffhq512_redegnet')
SHARED_MOTION_KERNELS = SHARED_DATA / 'degradation' / 'motion_kernels'


@dataclass
class MakeTestsetOptions:
    """What to build; each field is also a flag of the command. Paths may be given as strings."""
    sources: tuple[Path, ...] = option((), 'folders of aligned HQ faces (by default the held-out FFHQ faces)',
                                       nargs='+', cli_default=HELD_OUT_SOURCES)
    out_dir: Path | None = option(None, 'output folder (gt/, landmarks/, <setting>/lq ...)', aliases=('--out',))
    seed: int = option(0, 'seed of every image\'s degradation parameters')
    settings: tuple[str, ...] | None = option(
        ('x4', 'x8', 'eq11'), 'settings to make (default: all of dfdnet.data.testset.SETTINGS: x4, x8, eq11, clean_x2, '
        'x4_noise_jpeg, x4_blur_noise_jpeg; docs/evaluation.md); None: all of them', nargs='+', cli_default=None)
    size: int = option(512, 'side of the GT and of the upsampled LQ')
    max_images: int | None = option(None, 'use at most this many faces', aliases=('--max-images',))
    motion_kernels: Path | None = option(None, f'folder of .mat/.npy/.png kernels or a .npz set, needed when a setting '
                                         f'uses motion blur (default: {SHARED_MOTION_KERNELS} if present, else the '
                                         'kernels shipped with dfdnet)', aliases=('--motion-kernels',))
    landmarks: bool = option(True, 'do not write the GT dlib landmarks', flag='--no_landmarks', negate=True,
                             aliases=('--no-landmarks',))
    overwrite: bool = option(False, 'replace a test set already in --out_dir')

    def __post_init__(self):
        self.sources = tuple(Path(source) for source in self.sources)
        if not self.sources:
            raise ValueError('no source folders of HQ faces: pass --sources DIR ...')
        if self.out_dir is None:
            raise ValueError('no output folder: pass --out_dir DIR')
        self.out_dir = Path(self.out_dir)
        if self.motion_kernels is not None:
            self.motion_kernels = Path(self.motion_kernels)
        if self.settings is not None:
            self.settings = tuple(self.settings)
