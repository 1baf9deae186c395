"""Options of the whole-image restoration command, parsed once into a typed object."""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

OUTPUT_EXTENSIONS = ('png', 'jpg', 'jpeg', 'bmp', 'tif', 'tiff', 'webp')


@dataclass
class RestoreOptions:
    """The options of ``test_FaceDict.py`` and of ``PhotoRestorer.from_options``.

    test_path: image file or folder (searched recursively); results_dir: output root (both only
    for the command's ``RestorationRun``).
    upscale_factor: the whole image is resized by this factor (bilinear) before paste-back.
    device: 'auto' (a CUDA GPU if there is one, else the CPU), 'cpu', 'cuda[:N]' or GPU ids as
    ``--gpu_ids`` takes them (``dfdnet.utils.device.select_device``).
    checkpoint / dict_dir: generator weights and component dictionaries; None: the released files
    when they are in place, else the model shipped with the package (``resolve_model_paths``).
    detector: 'hog' or 'cnn' (dlib); detector_upsample: dlib upsampling steps.
    only_largest_face: restore only the largest detected face of each image.
    aligned: inputs are aligned faces (no detection, no paste-back).
    landmarks_dir: released ``<image file name>.txt`` 68-point files for aligned inputs.
    landmark_model: 'dlib' (68-point shape predictor) or 'fan' (needs ``landmark_weights``).
    landmark_weights: local weights for the landmark model (dlib .dat or FAN TorchScript).
    template_path: optional FFHQ_template.npy (5 x 2, 1024 px) replacing the built-in template.
    batch_size: faces per generator forward. ext: output image format.
    precision: 'auto' (bf16 where the hardware has it natively, else fp32), 'fp32', 'bf16' or 'fp16'.
    max_input_megapixels / max_output_megapixels: an image larger than this (input as stored;
    output after the upscale factor) is reported and skipped instead of exhausting memory (a
    12000x8000 photo needs about 6.5 GB); 0 = no limit.
    """
    test_path: Path | None = None
    results_dir: Path | None = None
    checkpoint: Path | None = None
    dict_dir: Path | None = None
    upscale_factor: int = 4
    device: str = 'auto'
    detector: str = 'hog'
    detector_upsample: int = 1
    only_largest_face: bool = False
    aligned: bool = False
    landmarks_dir: Path | None = None
    landmark_model: str = 'dlib'
    landmark_weights: Path | None = None
    template_path: Path | None = None
    batch_size: int = 4
    ext: str = 'png'
    write_html: bool = True
    precision: str = 'auto'
    max_input_megapixels: float = 64.0
    max_output_megapixels: float = 128.0

    def __post_init__(self):
        for name in ('test_path', 'results_dir', 'checkpoint', 'dict_dir', 'landmarks_dir', 'landmark_weights',
                     'template_path'):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, Path(value))
        self.ext = self.ext.lower().lstrip('.')
        if self.ext not in OUTPUT_EXTENSIONS:
            raise ValueError(f'--ext must be one of {OUTPUT_EXTENSIONS}, got {self.ext!r}')
        if self.upscale_factor < 1:
            raise ValueError(f'--upscale_factor must be >= 1, got {self.upscale_factor}')
        if self.max_input_megapixels < 0 or self.max_output_megapixels < 0:
            raise ValueError('--max_input_megapixels and --max_output_megapixels must be >= 0 (0 = no limit)')
        if self.batch_size < 1:
            raise ValueError(f'--batch_size must be >= 1, got {self.batch_size}')
        if self.detector not in ('hog', 'cnn'):
            raise ValueError(f"--detector must be 'hog' or 'cnn', got {self.detector!r}")
        if self.precision not in ('auto', 'fp32', 'bf16', 'fp16'):
            raise ValueError(f"--precision must be 'auto', 'fp32', 'bf16' or 'fp16', got {self.precision!r}")
        if self.landmark_model not in ('dlib', 'fan'):
            raise ValueError(f"--landmark_model must be 'dlib' or 'fan', got {self.landmark_model!r}")

    def to_dict(self) -> dict:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


def check_run_paths(test_path, results_dir) -> None:
    """Raise ``ValueError`` naming the path when a run could not write its results or could
    overwrite an input: a results path that is a file or not writable, the input folder itself,
    or a folder that holds the input (results inside the input folder are fine: they are skipped)."""
    test_path, results_dir = Path(test_path), Path(results_dir)
    if results_dir.exists() and not results_dir.is_dir():
        raise ValueError(f'--results_dir {results_dir} is a file, not a folder')
    source, target = test_path.resolve(), results_dir.resolve()
    if source == target:
        raise ValueError(f'--results_dir {results_dir} is the input folder itself: the results would mix with the '
                         'photos; choose another folder')
    if target in source.parents:
        raise ValueError(f'the input {test_path} lies inside --results_dir {results_dir}: its results could '
                         'overwrite it; choose another folder')
    existing = next(p for p in (target, *target.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f'--results_dir {results_dir} cannot be written ({existing} is not a writable folder)')
