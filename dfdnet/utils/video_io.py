"""Video in and out with PyAV (FFmpeg's libraries inside the ``av`` wheel; no system ffmpeg).

``VideoReader`` streams an input's decoded RGB frames and its audio packets in file order, so a
video of any length is processed with bounded memory. ``VideoWriter`` encodes H.264 (MPEG-4 Part 2
where libx264 is missing) in an MP4 with each frame's own timestamp (same frame count and rate as
the input, variable rates kept) and the input's audio: copied packet by packet when MP4 can hold
its codec, else re-encoded to AAC. The file appears only when complete (``atomic_path``).
Frames are returned upright: a display rotation (phones store portrait video as landscape plus a
rotation) is applied on reading, so faces stand up for the detector and the output plays upright.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from dfdnet.utils.files import atomic_path

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = ('.mp4', '.mov', '.avi', '.mkv', '.webm', '.m4v')
# Audio codecs the MP4 muxer takes as they are; others (PCM, Vorbis, ...) are re-encoded to AAC.
MP4_AUDIO_CODECS = ('aac', 'mp3', 'alac', 'ac3', 'eac3', 'opus', 'flac')
_AAC_LAYOUTS = {1: 'mono', 2: 'stereo', 3: '2.1', 4: 'quad', 5: '5.0', 6: '5.1'}  # by channel count (more: 5.1)


class VideoReadError(ValueError):
    """A video that cannot be opened or decoded (the message names the file)."""


def is_video_file(path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def _ffmpeg_error():
    import av
    return getattr(av, 'FFmpegError', None) or av.error.FFmpegError


@dataclass
class VideoInfo:
    """width, height: pixels of the upright frames; fps: average frame rate; frames: the container's
    count (0 if it does not say); time_base: of the video stream's timestamps; audio_codec: None
    without audio; rotation: degrees counter-clockwise applied to the stored frames (0, 90, 180, 270)."""
    width: int
    height: int
    fps: Fraction
    frames: int
    time_base: Fraction
    audio_codec: str | None
    rotation: int = 0

    def describe(self) -> str:
        audio = f', audio {self.audio_codec}' if self.audio_codec else ', no audio'
        count = f'{self.frames} frames, ' if self.frames else ''
        rotated = f', rotated {self.rotation} degrees' if self.rotation else ''
        return f'{self.width}x{self.height}, {count}{float(self.fps):.3g} fps{audio}{rotated}'


@dataclass
class DecodedFrame:
    """One decoded frame: index (0-based, presentation order), rgb (H, W, 3) uint8, pts in
    ``time_base`` units (None when the file has none), seconds from the stream's start."""
    index: int
    rgb: np.ndarray
    pts: int | None
    seconds: float


class VideoReader:
    """The first video stream (and first audio stream) of ``path``; iterate for ``DecodedFrame``s
    and audio ``av.Packet``s in file order. Raises ``VideoReadError`` naming the file."""

    def __init__(self, path):
        self.path = Path(path)
        if self.path.is_symlink() and not self.path.exists():
            raise VideoReadError(f'{self.path}: a link that cannot be followed (its target is missing, or links loop)')
        try:
            import av
        except ImportError as exc:
            raise VideoReadError(f'{self.path}: reading videos needs PyAV (python -m pip install av)') from exc
        try:
            self._container = av.open(str(self.path), metadata_errors='ignore')
        except (_ffmpeg_error(), OSError, UnicodeDecodeError) as exc:
            raise VideoReadError(f'{self.path}: cannot open the video ({getattr(exc, "strerror", None) or exc})') from exc
        if not self._container.streams.video:
            self._container.close()
            raise VideoReadError(f'{self.path}: no video stream')
        self.video = self._container.streams.video[0]
        self.video.thread_type = 'AUTO'
        self.audio = self._container.streams.audio[0] if self._container.streams.audio else None
        context = self.video.codec_context
        fps = self.video.average_rate or self.video.guessed_rate or Fraction(25)
        self.rotation = self._display_rotation(av)
        width, height = int(context.width), int(context.height)
        if self.rotation in (90, 270):
            width, height = height, width
        self.info = VideoInfo(width=width, height=height, fps=Fraction(fps), frames=int(self.video.frames or 0),
                              time_base=Fraction(self.video.time_base or Fraction(1, 90000)),
                              audio_codec=self.audio.codec_context.name if self.audio is not None else None,
                              rotation=self.rotation)
        if self.info.width <= 0 or self.info.height <= 0:
            self.close()
            raise VideoReadError(f'{self.path}: the video stream has no frame size')

    def _display_rotation(self, av) -> int:
        """The first frame's display rotation, counter-clockwise, as 0/90/180/270 (read from a
        second handle, so that this one still starts at the beginning)."""
        try:
            with av.open(str(self.path), metadata_errors='ignore') as probe:
                for frame in probe.decode(video=0):
                    return int(round((frame.rotation or 0) / 90.0)) % 4 * 90
        except (_ffmpeg_error(), OSError, AttributeError):
            pass  # undecodable: __iter__ reports it
        return 0

    def __iter__(self):
        streams = [self.video] + ([self.audio] if self.audio is not None else [])
        index = 0
        start = self.video.start_time or 0
        try:
            for packet in self._container.demux(streams):
                if packet.stream.type == 'audio':
                    if packet.dts is not None:  # the demuxer's final empty packet has none
                        yield packet
                    continue
                for frame in packet.decode():
                    pts = frame.pts
                    seconds = float((pts - start) * self.info.time_base) if pts is not None else index / float(
                        self.info.fps)
                    rgb = frame.to_ndarray(format='rgb24')
                    if self.rotation:
                        rgb = np.ascontiguousarray(np.rot90(rgb, self.rotation // 90))
                    yield DecodedFrame(index, rgb, pts, seconds)
                    index += 1
        except _ffmpeg_error() as exc:
            raise VideoReadError(f'{self.path}: cannot decode frame {index} ({exc})') from exc
        if index == 0:
            raise VideoReadError(f'{self.path}: no frame could be decoded')

    def frames(self):
        """The ``DecodedFrame``s alone (the audio packets skipped)."""
        return (item for item in self if isinstance(item, DecodedFrame))

    def close(self) -> None:
        self._container.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _video_codec() -> str:
    import av
    try:
        av.codec.Codec('libx264', 'w')
        return 'libx264'
    except Exception:  # a build of FFmpeg without x264
        return 'mpeg4'


class VideoWriter:
    """An MP4 at ``path`` (written under a temporary name, renamed by ``close``).

    info: the input's ``VideoInfo`` (frame rate and time base are kept); width, height: the output
    frame size (rounded up to even, as 4:2:0 needs: the last row/column is repeated); audio: the
    input's audio stream (``VideoReader.audio``) or None; crf: x264 quality (lower is better).
    """

    def __init__(self, path, info: VideoInfo, width: int, height: int, audio=None, crf: int = 18):
        import av

        self.path = Path(path)
        self._atomic = atomic_path(self.path)
        self._tmp = self._atomic.__enter__()
        self._container = av.open(str(self._tmp), 'w', format='mp4')
        codec = _video_codec()
        self.video = self._container.add_stream(codec, rate=info.fps)
        self.size = (int(width), int(height))
        self.video.width, self.video.height = (v + v % 2 for v in self.size)
        self.video.pix_fmt = 'yuv420p'
        self.video.time_base = info.time_base
        self.video.codec_context.time_base = info.time_base
        if codec == 'libx264':
            self.video.options = {'crf': str(int(crf)), 'preset': 'medium'}
        else:
            self.video.bit_rate = 8_000_000
        self.time_base, self.fps = info.time_base, info.fps
        self.frames_written = 0
        self._audio_in, self._audio_out, self.audio_mode = audio, None, None
        if audio is not None:
            if audio.codec_context.name in MP4_AUDIO_CODECS:
                self._audio_out = self._container.add_stream_from_template(audio)
                self.audio_mode = 'copied'
            else:
                rate = audio.codec_context.sample_rate or 48000
                self._audio_out = self._container.add_stream('aac', rate=rate)
                # A standard layout of the same channel count (AAC refuses an unnamed '1 channels').
                channels = audio.codec_context.layout.nb_channels if audio.codec_context.layout else 2
                self._audio_out.layout = _AAC_LAYOUTS[max(1, min(channels, 6))]
                self.audio_mode = 'aac'

    def write_frame(self, rgb: np.ndarray, pts: int | None = None) -> None:
        """Encode one (H, W, 3) uint8 RGB frame at ``pts`` (in the input's time base; None: the
        next frame at the nominal rate)."""
        import av

        if rgb.shape[:2] != self.size[::-1]:
            raise ValueError(f'frame of {rgb.shape[1]}x{rgb.shape[0]} px, the video is {self.size[0]}x{self.size[1]}')
        pad_y, pad_x = self.video.height - rgb.shape[0], self.video.width - rgb.shape[1]
        if pad_y or pad_x:
            rgb = np.pad(rgb, ((0, pad_y), (0, pad_x), (0, 0)), mode='edge')
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format='rgb24')
        if pts is None:
            pts = int(round(self.frames_written / (self.fps * self.time_base)))
        frame.pts, frame.time_base = int(pts), self.time_base
        self._container.mux(self.video.encode(frame))
        self.frames_written += 1

    def write_audio(self, packet) -> None:
        """Pass one audio packet of the input on (copied, or decoded and re-encoded to AAC)."""
        if self._audio_out is None:
            return
        if self.audio_mode == 'copied':
            packet.stream = self._audio_out
            self._container.mux(packet)
            return
        for frame in packet.decode():
            frame.pts = None  # the AAC encoder counts samples itself
            self._container.mux(self._audio_out.encode(frame))

    def close(self) -> Path:
        """Flush the encoders and move the finished file into place; returns its path."""
        self._container.mux(self.video.encode())
        if self.audio_mode == 'aac':
            self._container.mux(self._audio_out.encode())
        self._container.close()
        self._atomic.__exit__(None, None, None)
        return self.path

    def abort(self) -> None:
        """Drop the unfinished file."""
        try:
            self._container.close()
        except Exception:  # already broken; the temporary file goes anyway
            pass
        self._atomic.__exit__(RuntimeError, RuntimeError('aborted'), None)
