"""The whole-image restoration run: every image and video, every face, the released output folders.

Faces from consecutive images share generator batches; an image is pasted and written as soon
as all its faces are restored, so at most about ``batch_size`` crops wait in memory. A video is
handed to ``dfdnet.pipeline.video.VideoRestoration`` (the photos before it are finished first).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from dfdnet.face.landmarks import LandmarkError, landmark_file_for, read_landmarks, write_landmarks
from dfdnet.pipeline.options import RestoreOptions
from dfdnet.pipeline.photo import PhotoRestorer
from dfdnet.pipeline.restorer import NOT_FINITE
from dfdnet.pipeline.resume import is_finished
from dfdnet.pipeline.results_folder import (STEP_AFFINE, STEP_CROP, STEP_FINAL, STEP_INPUT, STEP_LANDMARKS,  # noqa: F401
                                            STEP_RESTORED, STEPS, check_output_folders, remove_earlier_face_files,
                                            results_lock)
from dfdnet.pipeline.summary import RunSummary, StageTimer
from dfdnet.utils.files import atomic_path, remove_stale_temporaries
from dfdnet.utils.html import ImageRow, write_results_page
from dfdnet.utils.image_io import (ImageReadError, ImageSizeError, list_images, looks_like_image, match_input_format,
                                   read_image, to_rgb8, write_image)
from dfdnet.utils.video_io import VideoReadError, is_video_file

logger = logging.getLogger(__name__)


def is_restore_input(path) -> bool:
    """Images (any image-like name: undecodable kinds are then reported) and videos."""
    return looks_like_image(path) or is_video_file(path)


def list_restore_inputs(root, exclude=None) -> list:
    """The images and videos under ``root`` (recursively, sorted), or ``[root]`` for one file."""
    return list_images(root, exclude=exclude, include=is_restore_input)


class OutputLayout:
    """Paths of the released layout: ``<results>/<step>/<key>[_<face:02d>].<ext>``."""

    def __init__(self, root, ext: str):
        self.root = Path(root)
        self.ext = ext.lstrip('.')

    def path(self, step: str, key: str, face: int | None = None, ext: str | None = None) -> Path:
        name = key if face is None else f'{key}_{face:02d}'
        return self.root / step / f'{name}.{ext or self.ext}'


def output_keys(paths, root) -> dict:
    """Output name (relative path without extension) of each input; clashes get the extension appended."""
    root = Path(root)
    keys, used = {}, set()
    for path in paths:
        key = path.stem if root.is_file() else path.relative_to(root).with_suffix('').as_posix()
        if key in used:
            key = f'{key}_{path.suffix.lstrip(".").lower()}'
        base, n = key, 1
        while key in used:
            key, n = f'{base}_{n}', n + 1
        used.add(key)
        keys[path] = key
    return keys


@dataclass
class ImageJob:
    """One image in flight: its pixels, prepared faces and the restored ones by face index."""
    path: Path
    key: str
    image: np.ndarray
    faces: list
    restored: dict = field(default_factory=dict)
    failed: bool = False


class FolderRestoration:
    """Runs ``options`` over files with the steps of a ``PhotoRestorer`` (detect and align, restore,
    paste back), batching faces across photos and writing the released output folders.

    exclusive: the caller holds the results folder's lock (``results_lock``), so no other run writes
    there and every temporary file in it is a killed run's, removed whatever its age.
    rank: the torchrun rank running this share of the inputs, recorded with each photo.
    """

    def __init__(self, options: RestoreOptions, photo_restorer: PhotoRestorer, exclusive: bool = False,
                 rank: int = 0):
        self.options = options
        self.exclusive = exclusive
        self.rank = rank
        self.photo_restorer = photo_restorer
        self.layout = OutputLayout(options.results_dir, options.ext)
        self.timer = StageTimer()
        self.summary = RunSummary(device=self.photo_restorer.settings()['device'])
        self.rows: dict = {}
        self._keys = frozenset()  # the output keys of this run's inputs
        self._bar = None

    def run(self, paths=None, only=None, page: bool = True) -> RunSummary:
        """Process ``paths`` (default: every image and video under ``options.test_path``), or of them
        only the share ``only`` (another process runs the rest: the output names still come from
        all of ``paths``). ``page``: write index.html (a shard's caller writes the merged one)."""
        opts = self.options
        start = time.perf_counter()
        paths = list_restore_inputs(opts.test_path, exclude=opts.results_dir) if paths is None else list(paths)
        mine = paths if only is None else list(only)
        check_output_folders(opts.test_path, opts.results_dir)
        remove_stale_temporaries(opts.results_dir, min_age_s=0.0 if self.exclusive else 600.0)  # logs how many
        keys = output_keys(paths, opts.test_path)
        self._keys = frozenset(keys.values())
        self.summary.images_total = len(mine)
        queue: list = []
        with tqdm(total=len(mine), desc='images', unit='img', dynamic_ncols=True) as self._bar:
            for path in mine:
                if opts.skip_existing and self._reuse_finished(path, keys[path]):
                    continue
                if is_video_file(path):
                    queue = self._restore_queue(queue, full_batches_only=False)  # the photos before it first
                    self._run_video(path, keys[path])
                    continue
                job = self._prepare(path, keys[path])
                if job is None:
                    continue
                if not job.faces:
                    self._finish(job)
                queue.extend((job, face) for face in job.faces)
                queue = self._restore_queue(queue, full_batches_only=True)
            self._restore_queue(queue, full_batches_only=False)
        self.summary.stage_seconds = dict(self.timer.seconds)
        self.summary.forward_calls = self.photo_restorer.forward_calls
        self.summary.total_seconds = time.perf_counter() - start
        self.summary.photos = [{'path': str(p), 'output': keys[p], 'rank': self.rank,
                                'status': self._status(p)} for p in mine]
        if opts.write_html and page:
            self.write_page(paths)
        return self.summary

    def _status(self, path: Path) -> str:
        if path in self.summary.failed:
            return 'failed'
        return 'earlier run' if path in self.summary.images_existing else 'restored'

    def _reuse_finished(self, path: Path, key: str) -> bool:
        """--skip_existing: True (and the results page shows them) when an earlier run finished
        ``path``: its files are left as they are."""
        video = is_video_file(path)
        if not is_finished(self.layout, key, self.options.aligned, video):
            return False
        logger.info('%s: finished by an earlier run, skipped (--skip_existing)', path)
        row = self.rows[path] = ImageRow(name=key, note='restored by an earlier run (--skip_existing)')
        for column, step in (('input', STEP_INPUT), ('final', STEP_RESTORED if self.options.aligned else STEP_FINAL)):
            picture = self.layout.path(step, key)
            if picture.is_file():
                row.columns[column] = [picture]
        if video:
            row.video = self.layout.path(STEP_FINAL, key, ext='mp4')
        self.summary.images_existing.append(path)
        self._bar.update(1)
        return True

    # -- stages -------------------------------------------------------------------------------

    def _prepare(self, path: Path, key: str) -> ImageJob | None:
        opts, timer = self.options, self.timer
        self.rows[path] = ImageRow(name=key)
        # aligned mode names a face's files by the photo's key alone: another input's files may then look like these
        removed = remove_earlier_face_files(opts.results_dir, key, self._keys if opts.aligned else frozenset())
        if removed:
            logger.info('%s: removed %d per-face file(s) of an earlier run in %s', path, removed, opts.results_dir)
        try:
            with timer('read'):
                image = read_image(path, max_pixels=opts.max_input_megapixels * 1e6)
            if not opts.aligned:
                self.photo_restorer.check_output_size(image.shape)  # the path is named by _fail
            rgb = to_rgb8(image)
            with timer('write'):
                self._add_picture(path, 'input', write_image(self.layout.path(STEP_INPUT, key), image))
            if opts.aligned:
                faces, skipped, detected = [self._aligned_face(path, rgb)], [], 1
            else:
                faces, skipped, detected = self.photo_restorer.prepare(rgb, timer)
            with timer('write'):
                for face in faces:
                    self._write_face_inputs(path, key, face)
        except (ImageReadError, LandmarkError) as exc:
            self._fail(path, str(exc))
            return None
        except Exception as exc:  # keep going past one bad image; the summary reports it
            logger.debug('failure on %s', path, exc_info=True)
            self._fail(path, f'{type(exc).__name__}: {exc}')
            return None
        self.summary.faces_detected += detected
        for skip in skipped:
            logger.warning('%s: face %02d skipped: %s', path, skip.index, skip.reason)
            self.summary.faces_skipped.append({'image': str(path), 'face': skip.index, 'reason': skip.reason})
        if not faces:
            message = 'no face found' if not detected else f'no usable face ({detected} detected, all skipped)'
            logger.warning('%s: %s; writing the upscaled image only', path, message)
            self.summary.images_without_face.append(path)
            self.rows[path].note = message
        elif skipped:
            self.rows[path].note = f'{len(skipped)} face(s) skipped'
        return ImageJob(path, key, image, faces)

    def _run_video(self, path: Path, key: str) -> None:
        from dfdnet.pipeline.video import VideoRestoration

        opts, row = self.options, ImageRow(name=key)
        self.rows[path] = row
        if opts.aligned:
            self._fail(path, 'a video needs whole-frame mode (run it without --aligned)')
            return
        output = self.layout.path(STEP_FINAL, key, ext='mp4')
        frame_writer = self._frame_writer(key) if opts.save_frames else None
        try:
            result = VideoRestoration(self.photo_restorer, smooth=opts.temporal_smoothing,
                                      frame_writer=frame_writer, timer=self.timer).run(path, output)
            with self.timer('write'):
                self._add_picture(path, 'input', write_image(self.layout.path(STEP_INPUT, key), result.first_input))
                self._add_picture(path, 'final', write_image(self.layout.path(STEP_FINAL, key), result.first_output))
        except (VideoReadError, ImageSizeError) as exc:
            self._fail(path, str(exc))
            return
        except Exception as exc:  # keep going past one bad video; the summary reports it
            logger.debug('failure on %s', path, exc_info=True)
            self._fail(path, f'{type(exc).__name__}: {exc}')
            return
        logger.info('%s: %d frames, %d faces restored in %.1f s (%.2f frames/s); audio %s -> %s', path, result.frames,
                    result.faces_restored, result.seconds, result.fps, result.audio or 'none', output)
        row.video = output
        self.summary.videos.append({'path': str(path), **result.to_dict()})
        if result.cut_short:  # the rest of the file is missing or undecodable: a failure, not a shorter video
            self._fail(path, f'only {result.frames} of the {result.frames_expected} frames that the container '
                             f'announces could be decoded (the file is cut short or damaged); the {result.frames} '
                             f'restored frames are in {output}')
            return
        row.caption = (f'video ({result.input_description}): {result.frames} frames, {result.faces_restored} faces, '
                    f'{result.fps:.2f} frames/s')
        summary = self.summary
        summary.images_done += 1
        summary.faces_detected += result.faces_restored + result.faces_skipped
        summary.faces_restored += result.faces_restored
        self._bar.update(1)

    def _frame_writer(self, key: str):
        """--save_frames: every frame's Step0-4 pictures under ``<step>/<key>/<frame>``."""
        layout = self.layout

        def write(index, rgb, faces, restored, final):
            name = f'{key}/{index:06d}'
            write_image(layout.path(STEP_INPUT, name), rgb)
            for face, picture in zip(faces, restored):
                write_image(layout.path(STEP_CROP, name, face.index), face.crop)
                write_landmarks(layout.path(STEP_LANDMARKS, name, face.index, ext='txt'), face.landmarks68)
                write_image(layout.path(STEP_RESTORED, name, face.index), picture)
            write_image(layout.path(STEP_FINAL, name), final)
        return write

    def _aligned_face(self, path: Path, rgb: np.ndarray):
        landmarks = None
        if self.options.landmarks_dir is not None:
            found = landmark_file_for(path, self.options.landmarks_dir)
            if found is None:
                logger.warning('%s: no landmark file in %s; detecting the landmarks', path, self.options.landmarks_dir)
            else:
                landmarks = read_landmarks(found)
        with self.timer('landmarks'):
            return self.photo_restorer.prepare_aligned(rgb, landmarks)

    def _write_face_inputs(self, path: Path, key: str, face) -> None:
        index = None if self.options.aligned else face.index
        if not self.options.aligned:
            self._add_picture(path, 'aligned crops', write_image(self.layout.path(STEP_CROP, key, index), face.crop))
            with atomic_path(self.layout.path(STEP_AFFINE, key, index, ext='txt')) as tmp:
                np.savetxt(tmp, face.paste_affine, fmt='%.6f')
        write_landmarks(self.layout.path(STEP_LANDMARKS, key, index, ext='txt'), face.landmarks68)

    def _restore_queue(self, queue: list, full_batches_only: bool) -> list:
        """Restore queued (job, face) pairs ``batch_size`` at a time (also the last, partial batch
        unless ``full_batches_only``); returns what is left, without faces of failed images."""
        size = self.photo_restorer.batch_size
        while queue and (len(queue) >= size or not full_batches_only):
            batch, queue = queue[:size], queue[size:]
            self._restore_batch(batch)
            queue = [item for item in queue if not item[0].failed]
        return queue

    def _restore_batch(self, batch) -> None:
        try:
            with self.timer('restore'):
                outputs = self.photo_restorer.restore_faces([face for _, face in batch])
        except Exception as exc:
            logger.debug('restoration failure', exc_info=True)
            for job in {id(job): job for job, _ in batch}.values():
                self._fail(job.path, f'restoration failed: {type(exc).__name__}: {exc}', job)
            return
        for (job, face), restored in zip(batch, outputs):
            if job.failed:
                continue
            if restored is None:  # NaN or Inf out of the network: never pasted
                self._skip_face(job, face, NOT_FINITE)
                if len(job.restored) == len(job.faces):
                    self._finish(job)
                continue
            job.restored[face.index] = restored
            try:
                with self.timer('write'):
                    index = None if self.options.aligned else face.index
                    picture = match_input_format(restored, job.image) if self.options.aligned else restored
                    self._add_picture(job.path, 'restored faces',
                                      write_image(self.layout.path(STEP_RESTORED, job.key, index), picture))
            except Exception as exc:
                self._fail(job.path, f'cannot write the restored face: {type(exc).__name__}: {exc}', job)
                continue
            if len(job.restored) == len(job.faces):
                self._finish(job)

    def _skip_face(self, job: ImageJob, face, reason: str) -> None:
        """Leave ``face`` out of ``job`` (not pasted), reported as skipped."""
        logger.warning('%s: face %02d skipped: %s', job.path, face.index, reason)
        job.faces = [f for f in job.faces if f.index != face.index]
        self.summary.faces_skipped.append({'image': str(job.path), 'face': face.index, 'reason': reason})
        row = self.rows[job.path]
        row.note = f'{row.note}; face {face.index:02d} skipped' if row.note else f'face {face.index:02d} skipped'

    def _finish(self, job: ImageJob) -> None:
        try:
            if not self.options.aligned:
                with self.timer('paste'):
                    final = self.photo_restorer.paste(job.image, job.faces,
                                                      [job.restored[f.index] for f in job.faces])
                with self.timer('write'):
                    self._add_picture(job.path, 'final', write_image(self.layout.path(STEP_FINAL, job.key), final))
        except Exception as exc:
            logger.debug('paste-back failure on %s', job.path, exc_info=True)
            self._fail(job.path, f'paste-back failed: {type(exc).__name__}: {exc}', job)
            return
        self.summary.images_done += 1
        self.summary.faces_restored += len(job.faces)
        job.image, job.faces, job.restored = None, [], {}
        self._bar.update(1)

    def _fail(self, path: Path, reason: str, job: ImageJob | None = None) -> None:
        logger.error('%s: %s', path, reason)
        self.summary.failed[path] = reason
        self.rows[path].note = f'FAILED: {reason}'
        if job is not None:
            job.failed = True
            job.image, job.faces, job.restored = None, [], {}
        self._bar.update(1)

    # -- results page -------------------------------------------------------------------------

    def _add_picture(self, path: Path, column: str, picture: Path) -> Path:
        self.rows[path].columns.setdefault(column, []).append(picture)
        return picture

    def write_page(self, paths, rows: dict | None = None, summary: RunSummary | None = None) -> None:
        """index.html of ``paths`` in order, from ``rows`` and ``summary`` (default: this process's)."""
        rows = self.rows if rows is None else rows
        try:
            summary = self.summary if summary is None else summary
            per_image = summary.seconds_per_image()
            settings = self.photo_restorer.settings()
            info = {'model': self.photo_restorer.model_description,
                    'images': f'{summary.images_done} restored, {len(summary.failed)} failed'
                              + (f', {len(summary.images_existing)} by an earlier run' if summary.images_existing
                                 else ''),
                    'faces': str(summary.faces_restored),
                    'time per image': f'{per_image:.2f} s' if per_image is not None else 'n/a',
                    'paste-back': settings['paste-back'], 'colour fix': settings['colour fix']}
            write_results_page(self.options.results_dir / 'index.html', [rows[p] for p in paths if p in rows],
                               info=info)
        except Exception as exc:  # the page is a convenience; never fail the run for it
            logger.warning('cannot write %s: %s', self.options.results_dir / 'index.html', exc)
