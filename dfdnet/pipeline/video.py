"""Restore every face of a video: frames streamed in and out, faces tracked and smoothed over time,
batched across frames, pasted back, written to MP4 with the input's audio.

Memory stays bounded whatever the video's length: a frame waits only until its faces are
restored (at most about ``batch_size`` faces, or ``max_pending_frames`` frames, are in flight),
and frames leave in order.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from dfdnet.face.tracking import FaceTracker
from dfdnet.pipeline.photo import PhotoRestorer
from dfdnet.pipeline.restorer import NOT_FINITE
from dfdnet.pipeline.summary import StageTimer
from dfdnet.utils.text import printable
from dfdnet.utils.video_io import DecodedFrame, VideoReader, VideoWriter

logger = logging.getLogger(__name__)


@dataclass
class VideoResult:
    """What one video gave: frames written, faces restored and skipped (detected but unusable),
    seconds of work (model loading excluded), how the audio went (None, 'copied' or 'aac'),
    the output path and the first frame before and after (RGB uint8, for a poster);
    frames_expected: the container's frame count (0 when it does not say)."""
    output: Path
    frames: int = 0
    frames_expected: int = 0
    faces_restored: int = 0
    faces_skipped: int = 0
    seconds: float = 0.0
    audio: str | None = None
    input_description: str = ''
    first_input: np.ndarray | None = None
    first_output: np.ndarray | None = None

    @property
    def cut_short(self) -> bool:
        """True when fewer frames were decoded than the container announces (a truncated file)."""
        return 0 < self.frames < self.frames_expected

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return {'output': str(self.output), 'frames': self.frames, 'frames_expected': self.frames_expected,
                'faces_restored': self.faces_restored,
                'faces_skipped': self.faces_skipped, 'seconds': round(self.seconds, 3),
                'frames_per_second': round(self.fps, 3), 'audio': self.audio, 'input': self.input_description}


@dataclass
class _FrameJob:
    frame: DecodedFrame
    faces: list
    restored: dict = field(default_factory=dict)
    skipped: int = 0  # faces whose output was not finite

    @property
    def done(self) -> bool:
        return len(self.restored) == len(self.faces)


class VideoRestoration:
    """Runs a ``PhotoRestorer``'s steps over a video's frames.

    photo_restorer: its steps (``prepare``, ``restore_faces``, ``paste``) and settings (upscale,
    mask, colour fix, ``batch_size``: faces per generator call, gathered across frames); smooth: track faces
    and smooth their landmarks over time (``FaceTracker``), else every frame on its own;
    max_pending_frames: frames held at most while their faces wait for a batch (default 4 x
    batch_size); frame_writer: optional ``callable(frame_index, input_rgb, faces, restored, final)``
    (e.g. ``--save_frames``); timer: a ``StageTimer`` to add the stages to.
    """

    def __init__(self, photo_restorer: PhotoRestorer, *, smooth: bool = True, max_pending_frames: int | None = None,
                 frame_writer=None, timer: StageTimer | None = None):
        self.photo_restorer = photo_restorer
        self.smooth = smooth
        self.max_pending_frames = max_pending_frames or 4 * photo_restorer.batch_size
        self.frame_writer = frame_writer
        self.timer = timer or StageTimer()

    def run(self, path, output) -> VideoResult:
        """Restore ``path`` into the MP4 ``output`` (written atomically). Raises ``VideoReadError``
        for an unreadable video and ``ImageSizeError`` when its upscaled frames are too large;
        nothing is left at ``output`` on failure."""
        start = time.perf_counter()
        photo = self.photo_restorer
        with VideoReader(path) as reader:
            info = reader.info
            photo.check_output_size((info.height, info.width))
            up = photo.upscale_factor
            writer = VideoWriter(output, info, info.width * up, info.height * up, audio=reader.audio)
            result = VideoResult(Path(output), audio=writer.audio_mode, input_description=info.describe(),
                                 frames_expected=info.frames)
            tracker = FaceTracker() if self.smooth else None
            pending: deque = deque()
            queue: list = []
            try:
                with tqdm(total=info.frames or None, desc=printable(Path(path).name), unit='frame', dynamic_ncols=True,
                          leave=False) as bar:
                    for item in reader:
                        if not isinstance(item, DecodedFrame):
                            with self.timer('audio'):
                                writer.write_audio(item)
                            continue
                        faces, skipped = self._frame_faces(item, tracker)
                        result.faces_skipped += skipped
                        job = _FrameJob(item, faces)
                        pending.append(job)
                        queue.extend((job, face) for face in faces)
                        while len(queue) >= photo.batch_size or (queue and len(pending) > self.max_pending_frames):
                            queue = self._restore(queue)
                        self._emit_done(pending, writer, result, bar)
                    while queue:
                        queue = self._restore(queue)
                    self._emit_done(pending, writer, result, bar)
                with self.timer('encode'):
                    writer.close()
            except BaseException:
                writer.abort()
                raise
        result.seconds = time.perf_counter() - start
        return result

    def _frame_faces(self, frame: DecodedFrame, tracker: FaceTracker | None):
        faces, skipped, _ = self.photo_restorer.prepare(frame.rgb, self.timer, tracker, frame.seconds)
        for skip in skipped:
            logger.debug('frame %d, face %d skipped: %s', frame.index, skip.index, skip.reason)
        return faces, len(skipped)

    def _restore(self, queue: list) -> list:
        size = self.photo_restorer.batch_size
        batch, rest = queue[:size], queue[size:]
        with self.timer('restore'):
            outputs = self.photo_restorer.restore_faces([f for _, f in batch])
        for (job, face), restored in zip(batch, outputs):
            if restored is None:  # NaN or Inf out of the network: never pasted
                logger.warning('frame %d, face %02d skipped: %s', job.frame.index, face.index, NOT_FINITE)
                job.faces = [f for f in job.faces if f.index != face.index]
                job.skipped += 1
            else:
                job.restored[face.index] = restored
        return rest

    def _emit_done(self, pending: deque, writer: VideoWriter, result: VideoResult, bar) -> None:
        photo = self.photo_restorer
        while pending and pending[0].done:
            job = pending.popleft()
            restored = [job.restored[f.index] for f in job.faces]
            with self.timer('paste'):
                final = photo.paste(job.frame.rgb, job.faces, restored)
            with self.timer('encode'):
                writer.write_frame(final, job.frame.pts)
            if self.frame_writer is not None:
                with self.timer('write'):
                    self.frame_writer(job.frame.index, job.frame.rgb, job.faces, restored, final)
            if result.first_output is None:
                result.first_input, result.first_output = job.frame.rgb, final
            result.frames += 1
            result.faces_restored += len(job.faces)
            result.faces_skipped += job.skipped
            bar.update(1)
