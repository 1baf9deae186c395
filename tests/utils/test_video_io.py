"""Video in and out with PyAV: frames, rate, timestamps and audio survive; bad files are named."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from dfdnet.data.synthetic_video import noisy_frames, write_clip
from dfdnet.utils.video_io import DecodedFrame, VideoReadError, VideoReader, VideoWriter

av = pytest.importorskip('av')


def _scene(width=64, height=48):
    y, x = np.mgrid[0:height, 0:width]
    return np.dstack([x * 4 % 256, y * 5 % 256, (x + y) * 2 % 256]).astype(np.uint8)


def _read_all(path):
    with VideoReader(path) as reader:
        items = list(reader)
        return reader.info, [i for i in items if isinstance(i, DecodedFrame)], [i for i in items
                                                                             if not isinstance(i, DecodedFrame)]


def test_round_trip_keeps_frames_rate_timestamps_and_audio(tmp_path):
    clip = write_clip(tmp_path / 'in.mp4', noisy_frames(_scene(), 10, noise_sigma=2.0), fps=25)
    info, frames, audio = _read_all(clip)
    assert (info.width, info.height, info.fps, info.frames, info.audio_codec) == (64, 48, Fraction(25), 10, 'aac')
    assert [f.index for f in frames] == list(range(10)) and audio
    assert frames[3].seconds == pytest.approx(3 / 25)

    with VideoReader(clip) as reader:  # odd output size: padded to even for 4:2:0
        writer = VideoWriter(tmp_path / 'out.mp4', reader.info, 65, 49, audio=reader.audio)
        for item in reader:
            if isinstance(item, DecodedFrame):
                writer.write_frame(np.pad(item.rgb, ((0, 1), (0, 1), (0, 0)), mode='edge'), item.pts)
            else:
                writer.write_audio(item)
        assert writer.audio_mode == 'copied'
        writer.close()
    out_info, out_frames, out_audio = _read_all(tmp_path / 'out.mp4')
    assert (out_info.width, out_info.height, out_info.fps, out_info.frames) == (66, 50, Fraction(25), 10)
    assert out_info.audio_codec == 'aac' and len(out_audio) == len(audio)
    assert [f.seconds for f in out_frames] == pytest.approx([f.seconds for f in frames])
    error = np.abs(out_frames[5].rgb[:48, :64].astype(int) - frames[5].rgb).mean()
    assert error < 3.0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.')]  # no temporary file left


def test_audio_mp4_cannot_hold_is_reencoded_to_aac(tmp_path):
    path = tmp_path / 'pcm.mkv'
    container = av.open(str(path), 'w')
    video = container.add_stream('libx264', rate=10)
    video.width, video.height, video.pix_fmt = 32, 32, 'yuv420p'
    audio = container.add_stream('pcm_s16le', rate=8000)
    audio.layout = 'mono'
    for i in range(5):
        frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 40 * i, np.uint8), format='rgb24')
        frame.pts, frame.time_base = i, Fraction(1, 10)
        container.mux(video.encode(frame))
    container.mux(video.encode())
    tone = (3000 * np.sin(np.arange(4000) / 5)).astype(np.int16)[None]
    sound = av.AudioFrame.from_ndarray(tone, format='s16', layout='mono')
    sound.sample_rate, sound.pts = 8000, 0
    container.mux(audio.encode(sound))
    container.mux(audio.encode())
    container.close()
    with VideoReader(path) as reader:
        assert reader.info.audio_codec == 'pcm_s16le'
        writer = VideoWriter(tmp_path / 'out.mp4', reader.info, 32, 32, audio=reader.audio)
        for item in reader:
            writer.write_frame(item.rgb, item.pts) if isinstance(item, DecodedFrame) else writer.write_audio(item)
        writer.close()
    assert writer.audio_mode == 'aac'
    info, frames, _ = _read_all(tmp_path / 'out.mp4')
    assert info.audio_codec == 'aac' and len(frames) == 5


def test_bad_videos_are_named_and_an_aborted_write_leaves_nothing(tmp_path):
    broken = tmp_path / 'broken.mp4'
    broken.write_bytes(b'\x00\x00\x00\x18ftypmp42 truncated')
    with pytest.raises(VideoReadError, match='broken.mp4'):
        VideoReader(broken)
    with pytest.raises(VideoReadError, match='cannot open'):
        VideoReader(tmp_path / 'missing.mp4')
    clip = write_clip(tmp_path / 'ok.mp4', noisy_frames(_scene(), 2), audio_hz=None)
    with VideoReader(clip) as reader:
        assert reader.audio is None
        writer = VideoWriter(tmp_path / 'out.mp4', reader.info, 64, 48)
        with pytest.raises(ValueError, match='32x32 px, the video is 64x48'):
            writer.write_frame(np.zeros((32, 32, 3), np.uint8))
        writer.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ['broken.mp4', 'ok.mp4']


def test_display_rotation_is_applied_so_frames_stand_up(tmp_path):
    path = tmp_path / 'portrait.mp4'
    container = av.open(str(path), 'w')
    video = container.add_stream('libx264', rate=10)
    video.width, video.height, video.pix_fmt = 64, 32, 'yuv420p'
    video.set_display_rotation(90)  # stored landscape, shown turned 90 degrees counter-clockwise
    stored = np.zeros((32, 64, 3), np.uint8)
    stored[:, :16] = 255  # a white band on the stored frame's left
    for i in range(2):
        frame = av.VideoFrame.from_ndarray(stored, format='rgb24')
        frame.pts, frame.time_base = i, Fraction(1, 10)
        container.mux(video.encode(frame))
    container.mux(video.encode())
    container.close()
    info, frames, _ = _read_all(path)
    assert (info.width, info.height, info.rotation) == (32, 64, 90) and 'rotated 90' in info.describe()
    upright = frames[0].rgb
    assert upright.shape == (64, 32, 3)
    assert upright[-12:].mean() > 200 and upright[:40].mean() < 30  # the band is now at the bottom
