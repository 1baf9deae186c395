"""Clips made from one photo, for measuring video restoration: a still (or slowly panning) scene
with fresh sensor noise in every frame, and a tone as the audio track."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from dfdnet.utils.files import atomic_path


def noisy_frames(image: np.ndarray, frames: int, noise_sigma: float = 4.0, seed: int = 0, pan_px: float = 0.0):
    """Yield ``frames`` (H, W, 3) uint8 copies of ``image`` with fresh Gaussian noise (``noise_sigma``
    in 0-255 units); ``pan_px``: horizontal shift per frame in pixels (0 = a still scene)."""
    import cv2

    rng = np.random.default_rng(seed)
    base = np.asarray(image, dtype=np.float32)
    for index in range(frames):
        frame = base
        if pan_px:
            shift = np.float32([[1, 0, pan_px * index], [0, 1, 0]])
            frame = cv2.warpAffine(base, shift, base.shape[1::-1], flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REPLICATE)
        noisy = frame + rng.normal(0.0, noise_sigma, frame.shape).astype(np.float32)
        yield np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def write_clip(path, frames, fps: int = 25, audio_hz: float | None = 440.0, crf: int = 10) -> Path:
    """Encode (H, W, 3) uint8 RGB ``frames`` (even sizes) as H.264 in ``path`` (MP4/MKV/MOV by its
    extension) at ``fps``, with an AAC tone of ``audio_hz`` as long as the video (None: no audio)."""
    import av

    path = Path(path)
    frames = list(frames)
    height, width = frames[0].shape[:2]
    with atomic_path(path) as tmp:
        container = av.open(str(tmp), 'w', format={'.mkv': 'matroska', '.mov': 'mov'}.get(path.suffix.lower(), 'mp4'))
        video = container.add_stream('libx264', rate=fps)
        video.width, video.height, video.pix_fmt = width, height, 'yuv420p'
        video.options = {'crf': str(crf)}
        audio = None
        if audio_hz is not None:
            audio = container.add_stream('aac', rate=44100)
            audio.layout = 'mono'
        for index, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format='rgb24')
            frame.pts, frame.time_base = index, Fraction(1, fps)
            container.mux(video.encode(frame))
        container.mux(video.encode())
        if audio is not None:
            samples = int(44100 * len(frames) / fps)
            tone = (0.3 * np.sin(2 * np.pi * audio_hz * np.arange(samples) / 44100)).astype(np.float32)
            for start in range(0, samples, 1024):
                chunk = av.AudioFrame.from_ndarray(tone[None, start:start + 1024], format='fltp', layout='mono')
                chunk.sample_rate, chunk.pts = 44100, start
                container.mux(audio.encode(chunk))
            container.mux(audio.encode())
        container.close()
    return path
