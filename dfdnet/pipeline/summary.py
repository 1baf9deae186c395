"""Per-stage timing and the closing summary of a restoration run."""
from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from dfdnet.utils.files import atomic_path
from dfdnet.utils.text import printable


class StageTimer:
    """Accumulates wall-clock seconds per named stage: ``with timer('detect'): ...``."""

    def __init__(self):
        self.seconds: dict = {}

    @contextlib.contextmanager
    def __call__(self, stage: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start


@dataclass
class RunSummary:
    """Counts and timings of one run. ``failed`` maps an image path to the reason it failed."""
    images_total: int = 0
    images_done: int = 0
    images_without_face: list = field(default_factory=list)
    failed: dict = field(default_factory=dict)
    faces_detected: int = 0
    faces_restored: int = 0
    faces_skipped: list = field(default_factory=list)
    forward_calls: int = 0
    total_seconds: float = 0.0
    model_load_seconds: float = 0.0
    stage_seconds: dict = field(default_factory=dict)
    device: str = 'cpu'
    videos: list = field(default_factory=list)  # VideoResult.to_dict() of each video, with its 'path'
    images_existing: list = field(default_factory=list)  # finished by an earlier run (--skip_existing)
    photos: list = field(default_factory=list)  # per input: path, output key, rank, status
    ranks: list = field(default_factory=list)  # per torchrun rank: device, images, seconds (merged runs)

    @property
    def ok(self) -> bool:
        return not self.failed

    def seconds_per_face(self) -> float | None:
        """Generator seconds per restored face (None without faces)."""
        if not self.faces_restored:
            return None
        return self.stage_seconds.get('restore', 0.0) / self.faces_restored

    def seconds_per_image(self) -> float | None:
        """Whole-run seconds (model loading excluded) per image processed."""
        processed = self.images_done + len(self.failed)
        return self.total_seconds / processed if processed else None

    def to_dict(self) -> dict:
        return {
            'images_total': self.images_total, 'images_done': self.images_done,
            'images_failed': len(self.failed), 'failed': {str(k): v for k, v in self.failed.items()},
            'images_without_face': [str(p) for p in self.images_without_face],
            'faces_detected': self.faces_detected, 'faces_restored': self.faces_restored,
            'faces_skipped': self.faces_skipped, 'forward_calls': self.forward_calls,
            'device': self.device, 'total_seconds': round(self.total_seconds, 3),
            'model_load_seconds': round(self.model_load_seconds, 3),
            'seconds_per_face': _round(self.seconds_per_face()), 'seconds_per_image': _round(self.seconds_per_image()),
            'stage_seconds': {k: round(v, 3) for k, v in self.stage_seconds.items()},
            'videos': self.videos, 'images_existing': [str(p) for p in self.images_existing],
            'ranks': self.ranks, 'photos': self.photos,
        }

    def write_json(self, path) -> Path:
        path = Path(path)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=2), encoding='utf-8')
        return path

    def format(self) -> str:
        """A few human-readable lines for the end of a run (control characters escaped)."""
        earlier = f', {len(self.images_existing)} by an earlier run' if self.images_existing else ''
        lines = [f'images: {self.images_total} ({self.images_done} done{earlier}, {len(self.failed)} failed, '
                 f'{len(self.images_without_face)} without a face)',
                 f'faces: {self.faces_detected} detected, {self.faces_restored} restored, '
                 f'{len(self.faces_skipped)} skipped',
                 f'time on {self.device}: {self.total_seconds:.1f} s (+ {self.model_load_seconds:.1f} s loading the '
                 f'model); {_fmt(self.seconds_per_image())} s per image, {_fmt(self.seconds_per_face())} s per face '
                 '(generator)']
        if self.stage_seconds:
            lines.append('stages: ' + ', '.join(f'{k} {v:.1f} s' for k, v in self.stage_seconds.items()))
        for video in self.videos:
            lines.append(f"video {video['path']}: {video['frames']} frames in {video['seconds']:.1f} s "
                         f"({video['frames_per_second']:.2f} frames/s), {video['faces_restored']} faces, audio "
                         f"{video['audio'] or 'none'} -> {video['output']}")
        for path, reason in self.failed.items():
            lines.append(f'FAILED {path}: {reason}')
        return '\n'.join(printable(line) for line in lines)  # a file name's newline or escape code shown escaped


def merge_summaries(summaries: list, order: list) -> RunSummary:
    """One summary of the ranks' ``summaries`` (in rank order): counts and stage seconds added, wall
    time the longest rank's, ``photos`` in the inputs' ``order`` (a list of paths), ``ranks`` filled."""
    merged = RunSummary(device=', '.join(dict.fromkeys(s.device for s in summaries)))
    for summary in summaries:
        for name in ('images_total', 'images_done', 'faces_detected', 'faces_restored', 'forward_calls'):
            setattr(merged, name, getattr(merged, name) + getattr(summary, name))
        for name in ('images_without_face', 'faces_skipped', 'videos', 'images_existing', 'photos'):
            getattr(merged, name).extend(getattr(summary, name))
        merged.failed.update(summary.failed)
        for stage, seconds in summary.stage_seconds.items():
            merged.stage_seconds[stage] = merged.stage_seconds.get(stage, 0.0) + seconds
        merged.ranks.append({'rank': len(merged.ranks), 'device': summary.device, 'images': summary.images_total,
                             'images_done': summary.images_done, 'seconds': round(summary.total_seconds, 3)})
    merged.total_seconds = max(s.total_seconds for s in summaries)
    merged.model_load_seconds = max(s.model_load_seconds for s in summaries)
    position = {str(p): i for i, p in enumerate(order)}
    merged.photos.sort(key=lambda photo: position.get(photo['path'], len(position)))
    return merged


def _round(value):
    return None if value is None else round(value, 3)


def _fmt(value):
    return '-' if value is None else f'{value:.2f}'
