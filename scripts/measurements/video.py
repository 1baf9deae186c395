"""Measure video restoration: steadiness of the restored faces and frames per second.

A photo becomes a clip (``dfdnet.data.synthetic_video``): a still scene with fresh Gaussian sensor
noise in each frame, fitted into ``--width`` x ``--height`` (default 720p). It is restored with
the shipped model (or ``--checkpoint``/``--dict_dir``) with temporal smoothing and without, and
for each the frame-to-frame change inside the faces' paste masks is compared with the input's
(upscaled the same way): a steady restoration changes no more than its input does.

    PYTHONPATH=. python scripts/measurements/video.py --photo ../shared/data/whole/gfpgan/Blake_Lively.jpg --frames 24
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np


from dfdnet.data.synthetic_video import noisy_frames, write_clip
from dfdnet.face.paste import canvas_masks, upscale_image
from dfdnet.metrics.temporal import temporal_change
from dfdnet.pipeline.options import RestoreOptions
from dfdnet.pipeline.photo import PhotoRestorer
from dfdnet.pipeline.summary import StageTimer
from dfdnet.pipeline.video import VideoRestoration
from dfdnet.utils.benchmarking import print_report
from dfdnet.utils.image_io import read_rgb
from dfdnet.utils.video_io import VideoReader


def fit_frame(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` scaled to fit ``width`` x ``height`` and centred on a grey canvas of that size."""
    scale = min(width / image.shape[1], height / image.shape[0])
    resized = cv2.resize(image, (int(image.shape[1] * scale), int(image.shape[0] * scale)),
                         interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    canvas = np.full((height, width, 3), 128, np.uint8)
    y, x = (height - resized.shape[0]) // 2, (width - resized.shape[1]) // 2
    canvas[y:y + resized.shape[0], x:x + resized.shape[1]] = resized
    return canvas


def face_region(photo: PhotoRestorer, frame: np.ndarray) -> np.ndarray:
    """(H·up, W·up) bool: where the faces of ``frame`` are pasted (face mask > 0.5)."""
    faces, _, _ = photo.prepare(frame)
    if not faces:
        raise SystemExit('no face found in the clip')
    up = photo.upscale_factor
    return canvas_masks(faces, (frame.shape[0] * up, frame.shape[1] * up), photo.face_size, up) > 0.5


def video_frames(path):
    with VideoReader(path) as reader:
        return [frame.rgb for frame in reader.frames()]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--photo', type=Path, default=Path('TestData/astronaut_pair.jpg'))
    parser.add_argument('--width', type=int, default=1280)
    parser.add_argument('--height', type=int, default=720)
    parser.add_argument('--frames', type=int, default=24)
    parser.add_argument('--noise', type=float, default=4.0, help='sensor noise sigma, 0-255 units')
    parser.add_argument('--upscale_factor', type=int, default=1)
    parser.add_argument('--batch_size', type=int, default=4)
    parser.add_argument('--precision', default='auto')
    parser.add_argument('--checkpoint', type=Path)
    parser.add_argument('--dict_dir', type=Path)
    parser.add_argument('--json', type=Path, help='write the figures here too')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    photo = PhotoRestorer.from_options(RestoreOptions(
        device='cpu', upscale_factor=args.upscale_factor, batch_size=args.batch_size, precision=args.precision,
        checkpoint=args.checkpoint, dict_dir=args.dict_dir))
    still = fit_frame(read_rgb(args.photo), args.width, args.height)
    region = face_region(photo, still)
    report = {'photo': str(args.photo), 'size': f'{args.width}x{args.height}', 'frames': args.frames,
              'noise_sigma': args.noise, 'upscale_factor': args.upscale_factor, 'model': photo.model_description}
    with tempfile.TemporaryDirectory() as tmp:
        clip = write_clip(Path(tmp) / 'clip.mp4', noisy_frames(still, args.frames, args.noise))
        inputs = [upscale_image(f, args.upscale_factor) for f in video_frames(clip)]
        report['input_change'] = round(temporal_change(inputs, region), 3)
        for smooth in (True, False):
            out = Path(tmp) / f'restored_{smooth}.mp4'
            timer = StageTimer()
            result = VideoRestoration(photo, smooth=smooth, timer=timer).run(clip, out)
            name = 'smoothed' if smooth else 'per_frame'
            report[name] = {'change': round(temporal_change(video_frames(out), region), 3),
                            'frames_per_second': round(result.fps, 3), 'frames': result.frames,
                            'faces_restored': result.faces_restored,
                            'stage_seconds_per_frame': {k: round(v / result.frames, 3) for k, v in timer.seconds.items()}}
    print_report(report, args.json)
    return 0


if __name__ == '__main__':
    sys.exit(main())
