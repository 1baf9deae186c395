"""Options of ``python -m dfdnet.cli.evaluate`` / ``dfdnet.metrics.evaluate.evaluate``, declared once
(light imports: the command's ``--help`` needs no OpenCV or torch)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dfdnet.utils.device import DEVICE_HELP, check_device
from dfdnet.utils.options import check_choices, option


def parse_method(text) -> tuple[str, Path]:
    """A method of ``EvaluationOptions.restored``: ``(name, folder)``, or the text ``NAME=DIR`` or
    ``DIR`` (the method is then named after the folder)."""
    if not isinstance(text, str):
        name, folder = text
        return str(name), Path(folder)
    if '=' in text:
        name, folder = text.split('=', 1)
        return name, Path(folder)
    return Path(text).name or text, Path(text)


@dataclass
class EvaluationOptions:
    """What ``evaluate`` compares; each field is also a flag of ``python -m dfdnet.cli.evaluate``
    (declared once, ``dfdnet.utils.options.option``). Paths may be given as strings."""
    restored: tuple = option((), 'folder(s) of restored faces, one method each: NAME=DIR, or DIR (named after the '
                             'folder); in Python also (name, folder)',
                             nargs='+', metavar='[NAME=]DIR')
    gt_dir: Path | None = option(None, 'ground-truth folder (without it: no-reference metrics only)',
                                 aliases=('--gt',))
    lq_dir: Path | None = option(None, 'low-quality inputs (for --baseline_bicubic)', aliases=('--lq',))
    baseline_bicubic: bool = option(False, 'add a baseline row, bicubic: the --lq_dir images upsampled to the GT '
                                    'size')
    gt_landmarks_dir: Path | None = option(None, 'folder of GT landmarks "<name>.png.txt" (released format); '
                                           'default: dlib on the GT', aliases=('--gt-landmarks',))
    crop_border: int = option(0, 'pixels cropped from each side for PSNR/SSIM/NIQE', aliases=('--crop-border',))
    niqe_params: Path | None = option(None, 'NIQE pristine parameters (.npz, e.g. '
                                      '../shared/data/metrics/niqe_pris_params.npz)', aliases=('--niqe-params',))
    face_metrics: bool = option(True, 'skip identity, landmarks and face counts', flag='--no_face_metrics',
                                negate=True, aliases=('--no-face-metrics',))
    lpips: str = option('auto', 'auto: LPIPS if the lpips package and its weights are present locally; off',
                        choices=('auto', 'off'))
    device: str = option('cpu', 'device of LPIPS: ' + DEVICE_HELP)
    resize_restored: bool = option(False, 'bicubic-resize restored faces of another size to the GT size (e.g. a '
                                   '256-px model against 512-px GT); otherwise a size mismatch is an error for that '
                                   'image', aliases=('--resize-restored',))

    def __post_init__(self):
        self.restored = tuple(parse_method(method) for method in self.restored)
        for name in ('gt_dir', 'lq_dir', 'gt_landmarks_dir', 'niqe_params'):
            if getattr(self, name) is not None:
                setattr(self, name, Path(getattr(self, name)))
        self.device = check_device(self.device)
        check_choices(self)
