"""Options of ``build_dictionary``: one YAML file parsed once into dataclasses, then CLI overrides."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from dfdnet.data.face_options import FaceOptions
from dfdnet.utils.device import DEVICE_HELP, check_device, device_from_gpu_ids
from dfdnet.utils.options import apply_overrides, check_choices, from_dict, option, read_yaml
from dfdnet.utils.precision import PRECISIONS


@dataclass
class KMeansOptions:
    """Lloyd stopping rules and memory limits (bytes are given in MiB / GiB)."""
    max_iter: int = 100
    tol: float = 1e-4
    inertia_tol: float = 3e-4      # also stop when an iteration gains less than this fraction of inertia (0: off)
    init_dims: int = 128           # k-means++ distances in a random projection this wide (0: full features)
    chunk_mb: int | None = None    # float32 rows per distance block, in MiB (None: 32 on CPU, 1024 on GPU)
    resident_gb: float = 4.0       # copy a (part, level)'s features to the device when at most this big
    backend: str = 'auto'          # 'faiss', 'torch' or 'auto' (faiss on a GPU with a GPU build of faiss, else torch)


@dataclass
class BuildOptions:
    """Everything a dictionary build depends on. Paths are strings; None means "not given".

    The fields declared with ``option`` are also the command's flags (``dfdnet.cli.build_dictionary``),
    which override the options file's values.
    """
    input: str | None = option(None, 'folder of aligned high-quality faces (or photos with --align)')
    output: str | None = option(None, 'output folder for the 16 *_center.npy files and dictionary.json')
    k: int = option(256, 'atoms per part and scale (paper 256, released 512)')
    checkpoint: str | None = option(None, 'generator checkpoint whose frozen encoder is used', group='encoder')
    vgg: str | None = option(None, 'torchvision VGG19 state dict (features.N.* keys)', group='encoder')
    random_encoder: int | None = option(None, 'a seeded RANDOM encoder (experiments only; recorded in '
                                        'dictionary.json)', metavar='SEED', group='encoder')
    encoder: str = 'vgg19'         # architecture for --vgg / --random_encoder (a checkpoint says its own)
    max_faces: int | None = option(None, 'use at most this many faces')
    flip: bool = option(True, 'no horizontal-flip augmentation', flag='--no_flip', negate=True)
    seed: int = option(0, 'seed of the face sample and the k-means++ initialisation')
    max_rows_per_atom: int = option(48, 'keep a seeded sample of at most this x K rows per dictionary (0: every '
                                    'face)')
    device: str = option('auto', DEVICE_HELP, aliases=('--gpu_ids',))
    batch_size: int = option(4, 'faces per encoder pass')
    precision: str = option('fp32', 'encoder precision for the features (auto: bf16 where the hardware has it '
                            'natively); the crops and the k-means stay float32', choices=PRECISIONS)
    landmarks_dir: str | None = option(None, 'read 68 landmarks from released <name>.txt files here')
    landmark_cache: str | None = None  # default <cache_dir>/landmarks.npz
    cache_dir: str | None = option(None, 'landmark and feature cache (default <output>_cache, next to the '
                                   'output folder)')
    faces: FaceOptions = field(default_factory=FaceOptions)
    kmeans: KMeansOptions = field(default_factory=KMeansOptions)

    def __post_init__(self):
        self.device = check_device(self.device, 'device')
        check_choices(self)

    @property
    def align(self) -> bool:
        return self.faces.align

    def cache_folder(self) -> Path:
        if self.cache_dir:
            return Path(self.cache_dir)
        out = Path(self.output)
        return out.parent / f'{out.name}_cache'

    def landmark_cache_path(self) -> Path:
        return Path(self.landmark_cache) if self.landmark_cache else self.cache_folder() / 'landmarks.npz'

    def validate(self) -> 'BuildOptions':
        if not self.input:
            raise ValueError('no input folder: set input in the options file or pass --input DIR')
        if not self.output:
            raise ValueError('no output folder: set output in the options file or pass --output DIR')
        if int(self.k) < 1:
            raise ValueError(f'k must be a positive number of atoms, got {self.k}')
        if self.max_faces is not None and int(self.max_faces) < 1:
            raise ValueError(f'max_faces must be positive, got {self.max_faces}')
        if self.kmeans.backend not in ('auto', 'faiss', 'torch'):
            raise ValueError(f"kmeans.backend must be 'auto', 'faiss' or 'torch', got {self.kmeans.backend!r}")
        if self.kmeans.inertia_tol < 0 or self.kmeans.init_dims < 0:
            raise ValueError(f'kmeans.inertia_tol and kmeans.init_dims must be >= 0, got {self.kmeans.inertia_tol} '
                             f'and {self.kmeans.init_dims}')
        if self.max_rows_per_atom < 0:
            raise ValueError(f'max_rows_per_atom must be >= 0 (0: no bound), got {self.max_rows_per_atom}')
        if self.batch_size < 1:
            raise ValueError(f'batch_size must be positive, got {self.batch_size}')
        if Path(self.output).resolve() == Path(self.input).resolve():
            raise ValueError('the output folder must not be the input folder')
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def load_options(path=None, overrides: dict | None = None) -> BuildOptions:
    """Options from a YAML file (``path``, optional), with ``overrides`` (dotted keys such as
    ``faces.align``) applied on top; values of None in ``overrides`` are ignored. Unknown keys and
    wrong types raise ``OptionsError`` (a ``ValueError``) naming the key."""
    values = read_yaml(path) if path is not None else {}
    if 'gpu_ids' in values:  # the spelling of older options files
        gpu_ids = values.pop('gpu_ids')
        values.setdefault('device', device_from_gpu_ids(gpu_ids, str(path)))
    apply_overrides(values, dict(overrides or {}))
    return from_dict(BuildOptions, values, '')
