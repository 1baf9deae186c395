"""Options of the whole-image restoration command, parsed once into a typed object."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

OUTPUT_EXTENSIONS = ('png', 'jpg', 'jpeg', 'bmp', 'tif', 'tiff', 'webp')


@dataclass
class RestoreOptions:
    """Everything ``run_restoration`` needs.

    test_path: image file or folder (searched recursively); results_dir: output root.
    upscale_factor: the whole image is resized by this factor (bilinear) before paste-back.
    device: torch device string ('cpu', 'cuda:0').
    checkpoint / dict_dir: generator weights and component dictionaries.
    detector: 'hog' or 'cnn' (dlib); detector_upsample: dlib upsampling steps.
    only_largest_face: restore only the largest detected face of each image.
    aligned: inputs are aligned faces (no detection, no paste-back).
    landmarks_dir: released ``<image file name>.txt`` 68-point files for aligned inputs.
    landmark_model: 'dlib' (68-point shape predictor) or 'fan' (needs ``landmark_weights``).
    landmark_weights: local weights for the landmark model (dlib .dat or FAN TorchScript).
    template_path: optional FFHQ_template.npy (5 x 2, 1024 px) replacing the built-in template.
    batch_size: faces per generator forward. ext: output image format.
    """
    test_path: Path
    results_dir: Path
    checkpoint: Path
    dict_dir: Path
    upscale_factor: int = 4
    device: str = 'cpu'
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
        if self.batch_size < 1:
            raise ValueError(f'--batch_size must be >= 1, got {self.batch_size}')
        if self.detector not in ('hog', 'cnn'):
            raise ValueError(f"--detector must be 'hog' or 'cnn', got {self.detector!r}")
        if self.landmark_model not in ('dlib', 'fan'):
            raise ValueError(f"--landmark_model must be 'dlib' or 'fan', got {self.landmark_model!r}")

    def to_dict(self) -> dict:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}
