"""Faces followed across video frames, their landmarks smoothed over time.

Detections are matched to tracks by box overlap (Hungarian assignment on IoU); each track smooths
its landmarks with a One Euro filter (Casiez et al., CHI 2012): a low-pass whose cut-off rises
with the landmarks' speed, so a still face stops jittering while a moving one is followed without
lag. Speeds are measured in face sizes per second, so one setting fits every face size.

A track is *confirmed* (its face restored) once a detection scores ``confident_score`` or more, or
after ``confirm_frames`` detections in a row: the detector's weak one-frame false faces would
otherwise flash in and out of the video.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


class OneEuroFilter:
    """One Euro filter of an array signal.

    min_cutoff: Hz, the cut-off of a still signal (lower = steadier); beta: cut-off increase per
    unit of speed (in ``scale`` units per second; higher = less lag); d_cutoff: Hz, of the speed
    estimate. ``__call__(x, t, scale)``: x any-shape array, t seconds, scale the unit of speed.
    """

    def __init__(self, min_cutoff: float = 0.5, beta: float = 5.0, d_cutoff: float = 1.0):
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError('min_cutoff and d_cutoff must be > 0 and beta >= 0')
        self.min_cutoff, self.beta, self.d_cutoff = float(min_cutoff), float(beta), float(d_cutoff)
        self._x = self._dx = self._t = None

    @staticmethod
    def _alpha(cutoff, dt):
        tau = 1.0 / (2.0 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, x, t: float, scale: float = 1.0) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._x.shape != x.shape or t <= self._t:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), float(t)
            return x.copy()
        dt = float(t) - self._t
        speed = (x - self._x) / dt / max(float(scale), 1e-6)
        self._dx = self._dx + self._alpha(self.d_cutoff, dt) * (speed - self._dx)
        if x.ndim >= 1 and x.shape[-1] == 2:  # points: one cut-off per point from its speed
            magnitude = np.linalg.norm(self._dx, axis=-1, keepdims=True)
        else:
            magnitude = np.abs(self._dx)
        alpha = self._alpha(self.min_cutoff + self.beta * magnitude, dt)
        self._x = self._x + alpha * (x - self._x)
        self._t = float(t)
        return self._x.copy()


def box_iou(boxes_a, boxes_b) -> np.ndarray:
    """(N, M) intersection over union of [x1, y1, x2, y2] boxes."""
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


@dataclass
class FaceTrack:
    """One face over time: its id, last box, frames since it was last seen and its filters (the
    5 alignment points in image pixels, the 68 landmarks in aligned-crop pixels)."""
    track_id: int
    box: np.ndarray
    points5: OneEuroFilter
    landmarks68: OneEuroFilter
    missed: int = 0
    seen: int = 1
    streak: int = 1
    confirmed: bool = False
    last_time: float = field(default=0.0)

    def smooth_landmarks68(self, landmarks68, face_size: int) -> np.ndarray:
        """The 68 crop landmarks of this frame, smoothed (speed in crop sizes per second)."""
        return self.landmarks68(landmarks68, self.last_time, scale=face_size)


class FaceTracker:
    """Matches each frame's detections to the faces of earlier frames and smooths their points.

    min_iou: overlap needed to continue a track; max_missed: frames a track survives unseen;
    min_cutoff / beta: the One Euro filter's settings (see ``OneEuroFilter``); confident_score /
    confirm_frames: when a track counts as a face (see above; dlib HOG scores real faces ~0.3-1.5).
    """

    def __init__(self, min_iou: float = 0.3, max_missed: int = 5, min_cutoff: float = 0.5, beta: float = 5.0,
                 confident_score: float = 0.5, confirm_frames: int = 3):
        self.min_iou, self.max_missed = float(min_iou), int(max_missed)
        self.confident_score, self.confirm_frames = float(confident_score), int(confirm_frames)
        self.min_cutoff, self.beta = float(min_cutoff), float(beta)
        self.tracks: list = []
        self._next_id = 0

    def _new_track(self, box) -> FaceTrack:
        track = FaceTrack(self._next_id, np.asarray(box, np.float64), OneEuroFilter(self.min_cutoff, self.beta),
                          OneEuroFilter(self.min_cutoff, self.beta))
        self._next_id += 1
        self.tracks.append(track)
        return track

    def update(self, boxes, points5, seconds: float, scores=None) -> list:
        """One frame: boxes (N, 4) detections in image pixels, points5 their (N, 5, 2) alignment
        points, seconds the frame's time, scores the detector's (default: all confident). Returns,
        per detection in order, (track, smoothed points5); tracks unseen for more than
        ``max_missed`` frames are dropped."""
        from scipy.optimize import linear_sum_assignment

        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        matched: dict = {}
        if self.tracks and len(boxes):
            iou = box_iou([t.box for t in self.tracks], boxes)
            for row, col in zip(*linear_sum_assignment(-iou)):
                if iou[row, col] >= self.min_iou:
                    matched[col] = self.tracks[row]
        results = []
        for index, box in enumerate(boxes):
            track = matched.get(index)
            if track is None:
                track = self._new_track(box)
            else:
                track.seen += 1
                track.streak = track.streak + 1 if track.missed == 0 else 1
            score = float('inf') if scores is None else float(scores[index])
            track.confirmed |= score >= self.confident_score or track.streak >= self.confirm_frames
            track.box, track.missed, track.last_time = box, 0, float(seconds)
            size = math.sqrt(max((box[2] - box[0]) * (box[3] - box[1]), 1.0))
            results.append((track, track.points5(points5[index], seconds, scale=size)))
        used = {id(t) for t, _ in results}
        for track in self.tracks:
            if id(track) not in used:
                track.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        return results
