"""Restore every face of one photo from Python: the library call the command line is built on.

    import cv2, dfdnet
    restorer = dfdnet.PhotoRestorer.from_options(dfdnet.RestoreOptions(upscale_factor=2))
    result = restorer.enhance(cv2.imread('photo.jpg')[:, :, ::-1])   # RGB in
    cv2.imwrite('restored.png', result.image[:, :, ::-1])             # the photo, x2, faces pasted back

It is the counterpart of GFPGAN's ``GFPGANer.enhance``: a photo array in, the restored photo and
its restored faces out, with the options of ``test_FaceDict.py`` (``RestoreOptions``).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dfdnet.archs.fidelity import AutoFidelity
from dfdnet.face.paste import face_mask, paste_faces
from dfdnet.pipeline.faces import FacePreparer, PreparedFace, SkippedFace
from dfdnet.pipeline.options import (PASTE_MASKS, RELEASED_CHECKPOINT, RELEASED_DICT_DIR, RestoreOptions,
                                     shipped_model_dir)
from dfdnet.pipeline.restorer import NOT_FINITE, CropRestorer
from dfdnet.pipeline.summary import StageTimer
from dfdnet.utils.device import select_device
from dfdnet.utils.image_io import ImageSizeError, check_image_array, to_rgb8

logger = logging.getLogger(__name__)



def resolve_model_paths(checkpoint=None, dict_dir=None, released_checkpoint=RELEASED_CHECKPOINT,
                        released_dict_dir=RELEASED_DICT_DIR, shipped_dir=None) -> tuple:
    """The (checkpoint, dictionary path, description) to load: the single place that decides which
    model runs.

    Paths given win (a missing dictionary path then means the released folder). With neither
    given, the released files (relative to the working folder) are used when both are in place,
    else the model shipped with the package; if that is gone too, the released paths are returned
    and loading them reports what is missing.
    """
    if checkpoint is not None or dict_dir is not None:
        checkpoint = Path(checkpoint) if checkpoint is not None else Path(released_checkpoint)
        dict_dir = Path(dict_dir) if dict_dir is not None else Path(released_dict_dir)
        return checkpoint, dict_dir, 'given'
    if Path(released_checkpoint).exists() and Path(released_dict_dir).exists():
        return Path(released_checkpoint), Path(released_dict_dir), 'the released DFDNet weights'
    shipped_dir = shipped_model_dir() if shipped_dir is None else Path(shipped_dir)
    if (shipped_dir / 'net_g.pth').is_file() and (shipped_dir / 'dictionaries').is_dir():
        return (shipped_dir / 'net_g.pth', shipped_dir / 'dictionaries',
                "this project's default model (released weights not found; see docs/default_model.md)")
    return Path(released_checkpoint), Path(released_dict_dir), 'the released DFDNet weights'


def resolve_fidelity(checkpoint, fidelity=None, sharp_checkpoint=None) -> tuple:
    """(sharp checkpoint or None, fidelity) for ``load_generator``'s network interpolation.

    A model folder (the shipped one, or one written by ``dfdnet-export-model --sharp_checkpoint``)
    holds ``net_g_sharp.pth`` beside its ``net_g.pth`` and its default fidelity in ``model.json``:
    a number, or 'auto' with the folder's ``AutoFidelity`` rule (``fidelity.auto``). ``fidelity``:
    None (the folder's default), a number in [0, 1] or 'auto'. ``ValueError`` when a fidelity below
    1 is asked of a model without a sharp counterpart.
    """
    checkpoint = Path(checkpoint)
    default, rule = 1.0, AutoFidelity()
    if sharp_checkpoint is None:
        candidate, record = checkpoint.parent / 'net_g_sharp.pth', checkpoint.parent / 'model.json'
        if candidate.is_file() and checkpoint.name == 'net_g.pth':
            sharp_checkpoint = candidate
            if record.is_file():
                try:
                    stored = json.loads(record.read_text()).get('fidelity', {})
                    default = stored.get('default', 1.0)
                    default = default if default == 'auto' else float(default)
                    rule = AutoFidelity(**stored.get('auto', {}))
                except (ValueError, AttributeError, TypeError) as exc:
                    raise ValueError(f'{record}: cannot read its default fidelity ({exc})') from exc
    elif fidelity is None:
        raise ValueError('--sharp_checkpoint needs --fidelity (1 = --checkpoint, 0 = --sharp_checkpoint, or auto)')
    fidelity = default if fidelity is None else fidelity
    if fidelity == 'auto':
        if sharp_checkpoint is None:
            raise ValueError(f'--fidelity auto needs a sharp counterpart of {checkpoint}: the shipped model has one; '
                             'for other models give --sharp_checkpoint')
        return Path(sharp_checkpoint), rule
    fidelity = float(fidelity)
    if sharp_checkpoint is None and fidelity < 1.0:
        raise ValueError(f'--fidelity {fidelity:g} needs a sharp counterpart of {checkpoint}: the shipped model has '
                         'one; for other models give --sharp_checkpoint')
    return (Path(sharp_checkpoint) if sharp_checkpoint is not None else None), fidelity


def _backend_note(generator) -> str:
    backend = getattr(generator, 'backend', None)
    return f' with {backend}' if backend else ''


def _describe_fidelity(fidelity) -> str:
    if isinstance(fidelity, AutoFidelity):
        return f'auto per face, {fidelity.lowest:g} to 1'
    return f'{fidelity:g}'


def resolve_resampling(choice: str, checkpoint_format: str | None = None) -> str:
    """The photo pipeline's resampling kernel: ``choice`` unless it is 'auto', which is bicubic for a
    checkpoint of this project's format (its training resizes degraded faces back with bicubic, and
    a bilinear warp costs its clean faces PSNR: docs/restore.md, "Resampling kernel") and bilinear, as released,
    for the released and BasicSR files or when no model is known."""
    if choice != 'auto':
        return choice
    from dfdnet.archs.checkpoint import OWN_FORMAT

    return 'bicubic' if checkpoint_format == OWN_FORMAT else 'bilinear'


def build_preparer(options: RestoreOptions, face_size: int, device: str = 'cpu',
                   resampling: str | None = None) -> FacePreparer:
    """Detector and landmark models of ``options``, built once (dlib is imported here).
    ``resampling``: the resolved kernel (default: ``resolve_resampling(options.resampling)``)."""
    from dfdnet.face.alignment import face_template
    from dfdnet.face.detection import FaceDetector
    from dfdnet.face.landmarks import DlibLandmarker, build_landmarker

    landmarks68 = build_landmarker(options.landmark_model, options.landmark_weights, device=device)
    template = face_template(face_size, options.template_path)
    resampling = resampling or resolve_resampling(options.resampling)
    if options.aligned:
        return FacePreparer(face_size, landmarks68, template=template, resampling=resampling)
    detector = FaceDetector(options.detector, options.detector_upsample, max_pixels=detector_pixel_limit(options))
    return FacePreparer(face_size, landmarks68, detector=detector,
                        landmarks5=DlibLandmarker(5), template=template, only_largest=options.only_largest_face,
                        resampling=resampling, paste_transform=options.paste_transform)


def detector_pixel_limit(options: RestoreOptions) -> float:
    """The largest image the detector may work on, upsampling included: that of the largest input
    ``--max_input_megapixels`` lets in at the released one upsampling step (0 = no limit)."""
    return 4.0 * options.max_input_megapixels * 1e6


@dataclass
class RestoredPhoto:
    """What ``PhotoRestorer.enhance`` returns.

    image: the photo resized by the upscale factor with the restored faces pasted back, in the
    input's format (grey stays grey, 16-bit stays 16-bit); faces: the ``PreparedFace`` of each
    restored face (aligned crop, 68 landmarks, component boxes, affine transforms);
    restored_faces: the restored (S, S, 3) uint8 RGB crops, in the same order; skipped: the faces
    detected but not restored, with the reason.
    """
    image: np.ndarray
    faces: list = field(default_factory=list)
    restored_faces: list = field(default_factory=list)
    skipped: list = field(default_factory=list)


class PhotoRestorer:
    """A generator, its face tools and the paste-back, built once and used for every photo.

    preparer: a ``FacePreparer`` (detection, alignment, landmarks); restorer: a ``CropRestorer``
    (the generator, batched); upscale_factor: the photo is resized by it before paste-back, with the
    preparer's resampling kernel (also that of the faces' paste-back warp).
    ``from_options`` builds all of it from ``RestoreOptions`` (the command line's options).

    Its steps, which ``enhance``, the folder run and the video run all call: ``prepare`` (or
    ``prepare_aligned``) -> ``restore_faces`` (any faces, ``batch_size`` per forward) -> ``paste``.
    """

    def __init__(self, preparer: FacePreparer, restorer: CropRestorer, upscale_factor: int = 4,
                 model_description: str = '', max_output_megapixels: float = 0.0, paste_mask: str = 'face'):
        if paste_mask not in PASTE_MASKS:
            raise ValueError(f'paste_mask must be one of {PASTE_MASKS}, got {paste_mask!r}')
        self.paste_mask = paste_mask
        self.preparer = preparer
        self.restorer = restorer
        self.upscale_factor = int(upscale_factor)
        self.model_description = model_description
        self.max_output_megapixels = float(max_output_megapixels)

    @classmethod
    def from_options(cls, options: RestoreOptions | None = None, dft_levels=None) -> PhotoRestorer:
        """Load the model ``options`` names (default: released weights if present, else the shipped
        model) on ``options.device`` and its face tools. ``dft_levels``: ablation, as in
        ``load_generator``. Raises ``CheckpointError`` / ``DictionaryError`` / ``LandmarkError``
        naming the file when something cannot be loaded."""
        from dfdnet.archs import load_generator

        options = RestoreOptions() if options is None else options
        device = select_device(options.device)
        checkpoint, dict_dir, source = resolve_model_paths(options.checkpoint, options.dict_dir)
        sharp_checkpoint, fidelity = resolve_fidelity(checkpoint, options.fidelity, options.sharp_checkpoint)
        generator = load_generator(checkpoint, dict_dir, device=device, dft_levels=dft_levels,
                                   precision=options.precision, sharp_checkpoint=sharp_checkpoint, fidelity=fidelity,
                                   backend=options.backend)
        config = generator.config
        core = f', {config.core_size}-px core' if config.core_size != config.image_size else ''
        resampling = resolve_resampling(options.resampling, generator.checkpoint_format)
        description = (f'{source}: {checkpoint} + {dict_dir} (DFDNet{config.image_size}{core}, width '
                       f'{config.width}, DFT levels {list(config.dft_levels)}; {generator.precision} on {device}'
                       f'{_backend_note(generator)}; '
                       f'{resampling} resampling' + (f'; fidelity {_describe_fidelity(fidelity)}' if sharp_checkpoint else '') + ')')
        preparer = build_preparer(options, config.image_size, device, resampling)
        return cls(preparer, CropRestorer(generator, device=device, batch_size=options.batch_size,
                                          color_fix=options.color_fix),
                   options.upscale_factor, description, options.max_output_megapixels, options.paste_mask)

    def with_options(self, options: RestoreOptions) -> PhotoRestorer:
        """A light copy sharing this one's generator and face tools, with the upscale factor, batch
        size, colour fix, output limit and paste mask of ``options`` (the app's per-job settings)."""
        restorer = CropRestorer(self.restorer.generator, self.restorer.device, options.batch_size, options.color_fix)
        return PhotoRestorer(self.preparer, restorer, options.upscale_factor, self.model_description,
                             options.max_output_megapixels, options.paste_mask)

    @property
    def face_size(self) -> int:
        return self.preparer.face_size

    @property
    def batch_size(self) -> int:
        """Faces per generator forward (lowered for the rest of the run after an out-of-memory error)."""
        return self.restorer.batch_size

    @property
    def forward_calls(self) -> int:
        """Generator forwards so far."""
        return self.restorer.forward_calls

    def settings(self) -> dict:
        """What a run's summary and results page report of this restorer: 'device', 'paste-back'
        (the mask) and 'colour fix'."""
        return {'device': str(self.restorer.device), 'paste-back': self.paste_mask,
                'colour fix': self.restorer.color_fix}

    def check_output_size(self, image_shape) -> None:
        """Raise ``ImageSizeError`` when the upscaled result of an (H, W[, C]) image would exceed
        ``max_output_megapixels`` (0 = no limit), or the detector's upsampled image its limit
        (``FaceDetector.check_size``), before any work on it."""
        detector = getattr(self.preparer, 'detector', None)
        if detector is not None and hasattr(detector, 'check_size'):
            detector.check_size(image_shape)
        height, width = (int(v) * self.upscale_factor for v in image_shape[:2])
        if self.max_output_megapixels and height * width > self.max_output_megapixels * 1e6:
            raise ImageSizeError(f'the result would be {width}x{height} px ({height * width / 1e6:.0f} MP), more than the '
                             f'limit of {self.max_output_megapixels:g} MP (--max_output_megapixels); lower '
                             '--upscale_factor or raise the limit')

    def prepare(self, rgb: np.ndarray, timer: StageTimer | None = None, tracker=None, seconds: float = 0.0):
        """Step 1: the faces of an (H, W, 3) uint8 RGB photo, detected, aligned, with landmarks and
        component boxes: (``PreparedFace``s, ``SkippedFace``s, number detected). ``tracker`` /
        ``seconds``: video frames (``FacePreparer.faces_in_image``)."""
        return self.preparer.faces_in_image(rgb, self.upscale_factor, timer, tracker, seconds)

    def prepare_aligned(self, rgb: np.ndarray, landmarks68=None) -> PreparedFace:
        """Step 1 for an already aligned face ((H, W, 3) uint8 RGB, resized to the face size; 68
        landmarks in its pixels, or found): a ``PreparedFace``."""
        return self.preparer.aligned_face(rgb, landmarks68)

    def restore_faces(self, faces) -> list:
        """Step 2: the restored (S, S, 3) uint8 RGB crop of each ``PreparedFace``, ``batch_size`` per
        forward, in order; None for a face whose output is not finite (``NOT_FINITE``: skip it)."""
        faces = list(faces)
        return self.restorer.restore([f.crop for f in faces], [f.boxes for f in faces]) if faces else []

    def paste(self, image: np.ndarray, faces, restored_faces) -> np.ndarray:
        """Step 3: ``image`` resized by the upscale factor with ``restored_faces`` pasted at ``faces``
        (with ``face_mask`` of each face's landmarks, or the released square mask)."""
        masks = ([face_mask(face.landmarks68, self.face_size) for face in faces] if self.paste_mask == 'face'
                 else None)
        return paste_faces(image, list(restored_faces), [face.paste_affine for face in faces], self.upscale_factor,
                           masks, self.preparer.resampling)

    def enhance(self, image: np.ndarray, timer: StageTimer | None = None) -> RestoredPhoto:
        """Restore every face of ``image``: (H, W, 3) RGB or (H, W) grey, uint8 or uint16."""
        image = check_image_array(image)
        self.check_output_size(image.shape)
        faces, skipped, _ = self.prepare(to_rgb8(image), timer)
        restored = self.restore_faces(faces)
        skipped += [SkippedFace(f.index, NOT_FINITE) for f, r in zip(faces, restored) if r is None]
        faces, restored = [f for f, r in zip(faces, restored) if r is not None], [r for r in restored if r is not None]
        for skip in skipped:
            logger.warning('face %02d skipped: %s', skip.index, skip.reason)
        return RestoredPhoto(self.paste(image, faces, restored), faces, restored, skipped)

    def enhance_aligned(self, face: np.ndarray, landmarks68=None) -> np.ndarray:
        """Restore one aligned face ((S, S, 3) uint8 RGB; 68 landmarks in its pixels, or found);
        returns the (face_size, face_size, 3) uint8 RGB restored face."""
        restored = self.restore_faces([self.prepare_aligned(to_rgb8(check_image_array(face)), landmarks68)])[0]
        if restored is None:
            raise ValueError(NOT_FINITE)
        return restored


__all__ = ['PhotoRestorer', 'RestoredPhoto', 'SkippedFace', 'build_preparer', 'resolve_fidelity',
           'resolve_model_paths', 'resolve_resampling', 'shipped_model_dir']
