"""The pixel conventions of ``dfdnet.utils.pixels``: exact round trips, rounding, saturation."""
import numpy as np
import pytest
import torch

from dfdnet.utils.pixels import from_network, to_float01, to_network, to_uint8


def test_every_level_survives_both_round_trips_and_the_two_inputs_agree():
    levels = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    from_uint8 = to_network(levels)
    from_float = to_network(to_float01(levels))
    assert from_uint8.shape == (3, 16, 16) and from_uint8.dtype == torch.float32
    assert float(from_uint8.min()) == -1.0 and float(from_uint8.max()) == 1.0
    assert float((from_uint8 - from_float).abs().max()) <= 2 ** -23  # one float32 step apart at most
    np.testing.assert_array_equal(from_network(from_uint8), levels)
    np.testing.assert_array_equal(from_network(from_float), levels)
    np.testing.assert_array_equal(to_uint8(to_float01(levels)), levels)
    assert from_network(to_network(levels[None]))[0].shape == (16, 16, 3)  # batches too


def test_values_are_rounded_to_the_nearest_level_and_saturate():
    assert to_uint8(np.array([-0.2, 0.4 / 255, 0.6 / 255, 254.6 / 255, 1.3])).tolist() == [0, 0, 1, 255, 255]
    with pytest.raises(TypeError, match='uint8 or float'):
        to_network(np.zeros((4, 4, 3), np.int32))
