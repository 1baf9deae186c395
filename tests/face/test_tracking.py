"""Faces followed across frames: the One Euro filter steadies a still signal and follows a moving
one; the tracker keeps each face's identity through reordering and drops lost faces."""
from __future__ import annotations

import numpy as np
import pytest

from dfdnet.face.tracking import FaceTracker, OneEuroFilter, box_iou


def test_one_euro_filter_steadies_a_still_point_and_follows_a_moving_one():
    rng = np.random.default_rng(0)
    still, moving = OneEuroFilter(), OneEuroFilter()
    fps, noise = 25.0, 0.8
    smoothed_still, smoothed_moving, truth = [], [], []
    for i in range(100):
        t = i / fps
        smoothed_still.append(still(np.array([[50.0, 50.0]]) + rng.normal(0, noise, (1, 2)), t, scale=100))
        position = np.array([[50.0 + 200.0 * t, 50.0]])  # 2 face sizes per second
        truth.append(position)
        smoothed_moving.append(moving(position + rng.normal(0, noise, (1, 2)), t, scale=100))
    jitter = np.std(np.diff(np.array(smoothed_still[20:]), axis=0))
    assert jitter < 0.3 * noise * np.sqrt(2)  # the frame-to-frame jitter falls by more than 3x
    lag = np.abs(np.array(smoothed_moving[20:]) - np.array(truth[20:]))[..., 0].mean()
    assert lag < 3.0  # pixels behind a face moving 8 px per frame
    with pytest.raises(ValueError):
        OneEuroFilter(min_cutoff=0)


def test_tracker_keeps_identities_and_drops_lost_faces():
    tracker = FaceTracker(max_missed=2)
    a, b = np.array([0, 0, 100, 100.0]), np.array([300, 0, 400, 100.0])
    points = np.zeros((2, 5, 2))
    first = tracker.update([a, b], points, 0.0)
    ids = [track.track_id for track, _ in first]
    second = tracker.update([b + 5, a + 5], points + 1, 0.04)  # reordered and moved a little
    assert [track.track_id for track, _ in second] == ids[::-1]
    assert all(track.seen == 2 for track, _ in second)
    for k in range(3):  # b disappears for 3 frames: dropped after 2
        tracker.update([a], points[:1], 0.08 + 0.04 * k)
    third = tracker.update([b], points[:1], 0.24)
    assert third[0][0].track_id not in ids  # a new face, its filter started afresh
    np.testing.assert_allclose(third[0][1], points[0])
    assert box_iou([a], [a, b]).tolist() == [[1.0, 0.0]]


def test_weak_detections_count_as_faces_only_after_frames_in_a_row():
    tracker = FaceTracker(confident_score=0.5, confirm_frames=3)
    box, points = np.array([0, 0, 100, 100.0]), np.zeros((1, 5, 2))
    strong, = tracker.update([box + 200], points, 0.0, scores=[0.9])
    assert strong[0].confirmed  # a clear face at once
    states = []
    for k, seen in enumerate([1, 0, 1, 1, 1]):  # a weak face, lost once
        found = tracker.update([box] if seen else [], points[:seen], 0.04 * (k + 1), scores=[0.1][:seen])
        states.append(found[0][0].confirmed if found else None)
    assert states == [False, None, False, False, True]  # three in a row after the gap
