"""The restore side of the app: which models there are, one of them in memory, the request's
options, the bounded job queue and the photo and video jobs (the pipeline of ``test_FaceDict.py``)."""
from __future__ import annotations

import dataclasses
import logging
import threading
import types
import typing
from concurrent.futures import Future, ThreadPoolExecutor

from dfdnet.app.sessions import Job
from dfdnet.pipeline.options import RELEASED_CHECKPOINT, RELEASED_DICT_DIR, RestoreOptions, shipped_model_dir

logger = logging.getLogger(__name__)

# The RestoreOptions a request may set (form fields of the same names), besides 'model'.
REQUEST_FIELDS = ('upscale_factor', 'fidelity', 'color_fix', 'paste_mask')


class RequestError(ValueError):
    """Bad input from a request: ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class QueueFull(RuntimeError):
    """More jobs than the queue holds."""


def available_models(options: RestoreOptions) -> dict:
    """{name: (checkpoint, dictionaries, description)}, the default first: the weights given at
    start, the released weights when present, the model shipped with the package."""
    models = {}
    if options.checkpoint is not None or options.dict_dir is not None:
        checkpoint = options.checkpoint or RELEASED_CHECKPOINT
        models['given'] = (checkpoint, options.dict_dir or RELEASED_DICT_DIR, f'given at start: {checkpoint}')
    if RELEASED_CHECKPOINT.exists() and RELEASED_DICT_DIR.exists():
        models['released'] = (RELEASED_CHECKPOINT, RELEASED_DICT_DIR, 'the released DFDNet weights')
    shipped = shipped_model_dir()
    if (shipped / 'net_g.pth').is_file():
        models['shipped'] = (shipped / 'net_g.pth', shipped / 'dictionaries',
                             "this project's default model (docs/default_model.md)")
    return models


def _field_type(name: str):
    hint = typing.get_type_hints(RestoreOptions)[name]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    return hint


def request_options(base: RestoreOptions, form, models: dict) -> RestoreOptions:
    """``base`` with the request's ``REQUEST_FIELDS`` and model; ``RequestError`` naming the field."""
    changes = {}
    for name in REQUEST_FIELDS:
        value = form.get(name)
        if value is None or str(value).strip() == '':
            continue
        kind = _field_type(name)
        try:
            changes[name] = kind(str(value).strip())
        except ValueError:
            raise RequestError(f'{name}: {str(value)[:40]!r} is not {"a whole number" if kind is int else "a number"}')
    model = str(form.get('model') or next(iter(models), ''))
    if model not in models:
        raise RequestError(f'model: {model[:40]!r} is not one of: {", ".join(models) or "(no model found)"}')
    checkpoint, dict_dir, _ = models[model]
    sharp = base.sharp_checkpoint if model == 'given' else None
    try:
        return dataclasses.replace(base, checkpoint=checkpoint, dict_dir=dict_dir, sharp_checkpoint=sharp, **changes)
    except ValueError as exc:
        raise RequestError(str(exc)) from exc


class ModelCache:
    """One model in memory (a ``PhotoRestorer``), loaded again when a job asks for another model or
    fidelity; each job gets a light copy with its own upscale factor, colour fix and paste mask."""

    def __init__(self, loader=None):
        self._loader = loader
        self._lock = threading.Lock()
        self._key = None
        self._restorer = None
        self.state = 'not loaded'

    def get(self, options: RestoreOptions):
        from dfdnet.pipeline.photo import PhotoRestorer

        key = (options.checkpoint, options.dict_dir, options.sharp_checkpoint, options.fidelity)
        with self._lock:
            if key != self._key:
                self._restorer, self._key, self.state = None, None, 'loading'
                try:
                    self._restorer = (self._loader or PhotoRestorer.from_options)(options)
                except Exception as exc:
                    self.state = f'failed: {exc}'
                    raise
                self._key, self.state = key, 'ready'
                logger.info('model: %s', self._restorer.model_description)
            base = self._restorer
        return base.with_options(options)


class JobQueue:
    """Runs jobs on ``workers`` threads; at most ``workers + size`` are queued or running."""

    def __init__(self, workers: int, size: int):
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix='dfdnet-job')
        self._limit = workers + size
        self._lock = threading.Lock()
        self._waiting: list = []
        self.running = 0

    def submit(self, job: Job, work) -> Future:
        """Run ``work(job)`` when a worker is free; ``QueueFull`` when the queue is full."""
        with self._lock:
            if len(self._waiting) + self.running >= self._limit:
                raise QueueFull(f'the server is busy ({self.running} running, {len(self._waiting)} waiting); '
                                'try again in a minute')
            self._waiting.append(job)
        return self._pool.submit(self._run, job, work)

    def _run(self, job: Job, work):
        with self._lock:
            self._waiting.remove(job)
            self.running += 1
        job.state = 'running'
        try:
            return work(job)
        finally:
            with self._lock:
                self.running -= 1

    def position(self, job: Job) -> int:
        """Jobs ahead of ``job`` in the queue (0 when it runs or is not waiting)."""
        with self._lock:
            return self._waiting.index(job) + 1 if job in self._waiting else 0

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def run_job(job: Job, options: RestoreOptions, models: ModelCache) -> None:
    """Restore ``job``'s upload into its folder; a failure is recorded on the job with a message for
    the person (the traceback of an unexpected one goes to the log only)."""
    from dfdnet.errors import CheckpointError, DictionaryError
    from dfdnet.face.landmarks import LandmarkError
    from dfdnet.utils.image_io import ImageReadError, ImageSizeError
    from dfdnet.utils.video_io import VideoReadError

    try:
        (restore_video if job.kind == 'video' else restore_photo)(job, options, models)
        job.state, job.progress = 'done', 1.0
    except ImageSizeError as exc:
        job.fail(str(exc), 413)
    except (ImageReadError, VideoReadError, ValueError) as exc:
        job.fail(str(exc), 400)
    except (CheckpointError, DictionaryError, LandmarkError, FileNotFoundError) as exc:
        job.fail(f'the model cannot be loaded: {exc}', 503)
    except Exception:
        logger.exception('job %s (%s) failed', job.id, job.name)
        job.fail(f'{job.name}: an internal error stopped the restoration (the server log has the details)', 500)
    logger.info('job %s (%s): %s %s', job.id, job.name, job.state, job.message)


def restore_photo(job: Job, options: RestoreOptions, models: ModelCache) -> None:
    """Read, restore and write one photo: input.png, restored.png and each face before and after."""
    from dfdnet.utils.image_io import read_image, write_image

    image = read_image(job.upload, max_pixels=options.max_input_megapixels * 1e6)
    restorer = models.get(options)
    job.progress = 0.2
    result = restorer.enhance(image)
    write_image(job.folder / 'input.png', image)
    write_image(job.folder / 'restored.png', result.image)
    job.files.update(input='input.png', restored='restored.png')
    for number, (face, restored) in enumerate(zip(result.faces, result.restored_faces)):
        for role, pixels in (('before', face.crop), ('after', restored)):
            name = f'face{number:02d}_{role}.png'
            write_image(job.folder / name, pixels)
            job.files[f'face{number:02d}_{role}'] = name
    height, width = result.image.shape[:2]
    job.info.update(width=width, height=height, faces=len(result.faces),
                    skipped=[skip.reason for skip in result.skipped])


def restore_video(job: Job, options: RestoreOptions, models: ModelCache) -> None:
    """Restore a video into restored.mp4, with its first frame before and after as pictures."""
    from dfdnet.pipeline.video import VideoRestoration
    from dfdnet.utils.image_io import check_pixel_count, write_image
    from dfdnet.utils.video_io import VideoReader

    with VideoReader(job.upload) as reader:
        info = reader.info
    check_pixel_count(job.name, info.width, info.height, options.max_input_megapixels * 1e6)
    total = max(info.frames, 1)

    def count_frame(index, *_):
        job.progress = min(0.99, (index + 1) / total)

    restorer = models.get(options)
    result = VideoRestoration(restorer, smooth=options.temporal_smoothing,
                              frame_writer=count_frame).run(job.upload, job.folder / 'restored.mp4')
    if result.first_output is None:
        raise ValueError(f'{job.name}: no frame could be decoded')
    write_image(job.folder / 'input.png', result.first_input)
    write_image(job.folder / 'restored.png', result.first_output)
    job.files.update(input='input.png', restored='restored.png', video='restored.mp4')
    job.info.update(width=info.width * restorer.upscale_factor, height=info.height * restorer.upscale_factor,
                    frames=result.frames, faces=result.faces_restored)
