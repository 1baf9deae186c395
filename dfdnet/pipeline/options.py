"""Options of the whole-image restoration command, parsed once into a typed object."""
from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from dfdnet.face.color import COLOR_FIXES
from dfdnet.utils.device import DEVICE_HELP, check_device
from dfdnet.utils.options import check_choices, option
from dfdnet.utils.precision import PRECISIONS

OUTPUT_EXTENSIONS = ('png', 'jpg', 'jpeg', 'bmp', 'tif', 'tiff', 'webp')


RELEASED_CHECKPOINT = Path('checkpoints/facefh_dictionary/latest_net_G.pth')
RELEASED_DICT_DIR = Path('DictionaryCenter512')
BACKENDS = ('auto', 'torch', 'openvino', 'onnxruntime')  # dfdnet.archs.runtime.BACKENDS (kept light: no torch here)
PASTE_MASKS = ('face', 'released')  # dfdnet.face.paste.face_mask / soft_mask
PASTE_TRANSFORMS = ('inverse', 'released')  # dfdnet.face.alignment.alignment_transforms (kept light: no cv2 here)
MAX_DETECTOR_UPSAMPLE = 3  # 64 times the photo's pixels
RESAMPLINGS = ('auto', 'bilinear', 'bicubic')  # dfdnet.face.alignment.RESAMPLING, or chosen by the model


def shipped_model_dir() -> Path:
    """The default model shipped inside the package (``dfdnet/pretrained/default``)."""
    return Path(str(resources.files('dfdnet').joinpath('pretrained', 'default')))


@dataclass
class RestoreOptions:
    """The options of ``test_FaceDict.py`` / ``dfdnet-restore`` and of ``PhotoRestorer.from_options``.

    Each field is declared once, with its command-line flag and help (``dfdnet.utils.options.option``);
    the command's parser is made from these fields. Paths may be given as strings.
    """
    test_path: Path | None = option(None, 'an image or video file (mp4, mov, avi, mkv, webm, m4v), or a folder '
                                    'searched recursively for both', group='released options',
                                    cli_default='TestData')
    results_dir: Path | None = option(None, 'output root; must not be or contain the input',
                                      group='released options', cli_default='results')
    upscale_factor: int = option(4, 'whole-image upscale factor (bilinear, before paste-back)',
                                 group='released options')
    device: str = option('auto', DEVICE_HELP, aliases=('--gpu_ids',), group='released options')
    checkpoint: Path | None = option(None, "generator weights: released latest_net_G.pth, BasicSR port or this "
                                     f"project's format (default: {RELEASED_CHECKPOINT} when it exists, else the "
                                     "model shipped with the package, dfdnet/pretrained/default)", group='model')
    dict_dir: Path | None = option(None, 'component dictionaries: a DictionaryCenter512 folder or the BasicSR .pth '
                                   f"(default: {RELEASED_DICT_DIR} with the released checkpoint, else the shipped "
                                   "model's)", group='model')
    fidelity: str | None = option(None, 'detail against faithfulness: a number in [0, 1], 1 = the PSNR-trained '
                                  'generator (smooth, faithful), 0 = its adversarial fine-tune (sharpest), between, '
                                  "their weights interpolated (ESRGAN's network interpolation); or auto: each face "
                                  'its own, from how much fine detail its input has (clean faces 1, blurred or small '
                                  "ones towards 0). Default: the model folder's choice (model.json; the shipped "
                                  "model's is in docs/default_model.md)", group='model')
    sharp_checkpoint: Path | None = option(None, 'the adversarial fine-tune of --checkpoint that --fidelity '
                                           'interpolates towards (default: net_g_sharp.pth beside the checkpoint, '
                                           'as in the shipped model)', group='model')
    batch_size: int = option(4, 'faces per generator forward', group='model')
    backend: str = option('auto', 'what runs the generator: torch, or on the CPU openvino / onnxruntime (converted '
                          'once and cached in $DFDNET_CACHE/runtime, default ~/.cache/dfdnet/runtime; '
                          'docs/network.md); auto: the fastest measured for this model and precision (a '
                          '--backend openvino run measures it), torch when none was', choices=BACKENDS,
                          group='model')
    precision: str = option('auto', 'auto: bf16 where the hardware has it natively (CUDA with bf16, a CPU with '
                            'AMX-BF16 or AVX512-BF16), else fp32; the log says which ran', choices=PRECISIONS,
                            group='model')
    dft_levels: tuple[int, ...] | None = option(
        None, 'ablation: the feature levels (0 = stride 2 ... 3 = stride 16) that use the dictionaries; give the '
        'flag alone for none ("0 DFT"). Default: the model\'s own', choices=(0, 1, 2, 3), nargs='*', metavar='LEVEL',
        group='model')
    detector: str = option('hog', 'dlib detector: hog (fast) or cnn (MMOD: finds harder faces, slow on CPU)',
                           choices=('hog', 'cnn'), group='faces')
    detector_upsample: int = option(1, 'times dlib doubles the image before detecting (1 as released; at most 3: each '
                                    'step quadruples the memory; counted in the 4 x --max_input_megapixels limit '
                                    'of the image the detector sees)', group='faces')
    only_largest_face: bool = option(False, 'restore only the largest face of each image', group='faces')
    aligned: bool = option(False, 'inputs are aligned faces: no detection, no paste-back', group='faces')
    landmarks_dir: Path | None = option(None, 'with --aligned: folder of released <image file name>.txt files, 68 '
                                        'rows "x y" in the input image\'s pixels', group='faces')
    landmark_model: str = option('dlib', '68-point landmarks on the aligned crop: dlib or fan (needs '
                                 '--landmark_weights)', choices=('dlib', 'fan'), group='faces')
    landmark_weights: Path | None = option(None, "local weights for the landmark model (dlib .dat, or "
                                           "face-alignment's 2DFAN4 TorchScript file for fan); nothing is "
                                           "downloaded", group='faces')
    template_path: Path | None = option(None, 'FFHQ_template.npy (5 x 2, 1024 px) replacing the built-in '
                                        'five-point template', flag='--template', group='faces')
    resampling: str = option('auto', "kernel of the face warp, of enlarging aligned inputs, of the photo's upscale "
                             "and of the paste-back: bilinear (as released) or bicubic; auto: bicubic for this "
                             "project's models (their training brings faces back to full size with bicubic), "
                             "bilinear for the released and BasicSR weights", choices=RESAMPLINGS, group='faces')
    ext: str = option('png', 'output image format', choices=OUTPUT_EXTENSIONS, group='output')
    color_fix: str = option('none', "match each restored face's low-frequency colour to its input: none, adain "
                            '(channel mean and deviation) or wavelet (the input\'s low-pass under the restored '
                            'detail); grey inputs stay grey', choices=COLOR_FIXES, group='output')
    paste_mask: str = option('face', "face: a soft mask of the face's outline from its 68 landmarks (no square "
                             "seam); released: the released feathered square", choices=PASTE_MASKS,
                             group='output')
    paste_transform: str = option('inverse', "the paste-back warp: inverse (the exact inverse of the face's "
                                  'alignment warp: an unchanged face lands on the pixels it came from) or released '
                                  '(fitted again from the template to the landmarks, as released: misplaces faces by '
                                  'up to a few pixels)', choices=PASTE_TRANSFORMS, group='output')
    save_frames: bool = option(False, 'videos: also write every frame\'s Step0-4 pictures (the MP4 is always written)',
                               group='video')
    temporal_smoothing: bool = option(True, 'videos: restore every frame on its own, without tracking faces and '
                                      'smoothing their landmarks over time', flag='--no_temporal_smoothing',
                                      negate=True, group='video')
    skip_existing: bool = option(False, 'resume a killed run: leave the inputs whose final result is already in '
                                 'results_dir, whole, untouched (a cut or damaged result is made again)',
                                 group='output')
    write_html: bool = option(True, 'do not write results_dir/index.html', flag='--no_html', negate=True,
                              group='output')
    verbose: bool = option(False, 'log debugging details', group='output')
    max_input_megapixels: float = option(64.0, 'skip (and report) larger inputs instead of running out of memory '
                                         '(a 64-MP photo needs about 4.5 GB); 0 = no limit', group='output')
    max_output_megapixels: float = option(128.0, 'skip (and report) images whose upscaled result would be larger; '
                                          '0 = no limit', group='output')

    def __post_init__(self):
        for name in ('test_path', 'results_dir', 'checkpoint', 'dict_dir', 'landmarks_dir', 'landmark_weights',
                     'template_path', 'sharp_checkpoint'):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, Path(value))
        self.ext = self.ext.lower().lstrip('.')
        self.device = check_device(self.device)
        if self.dft_levels is not None:
            self.dft_levels = tuple(self.dft_levels)
        check_choices(self)
        if self.upscale_factor < 1:
            raise ValueError(f'--upscale_factor must be >= 1, got {self.upscale_factor}')
        if self.max_input_megapixels < 0 or self.max_output_megapixels < 0:
            raise ValueError('--max_input_megapixels and --max_output_megapixels must be >= 0 (0 = no limit)')
        if self.fidelity is not None and self.fidelity != 'auto':
            try:
                self.fidelity = float(self.fidelity)
            except (TypeError, ValueError):
                raise ValueError(f"--fidelity must be a number within [0, 1] or 'auto', got {self.fidelity!r}") from None
            if not 0.0 <= self.fidelity <= 1.0:
                raise ValueError(f'--fidelity must be within [0, 1], got {self.fidelity:g}')
        if self.batch_size < 1:
            raise ValueError(f'--batch_size must be >= 1, got {self.batch_size}')
        if not 0 <= self.detector_upsample <= MAX_DETECTOR_UPSAMPLE:  # each step quadruples the detector's image
            raise ValueError(f'--detector_upsample must be within [0, {MAX_DETECTOR_UPSAMPLE}], got '
                             f'{self.detector_upsample}')


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
