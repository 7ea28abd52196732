"""Back-projection of an aligned depth image into one point per label pixel (no ROS)."""

from __future__ import annotations

import numpy as np
import pytest

from bisenet_ros.inference.points import (
    BAND_PIXELS,
    Intrinsics,
    depth_in_metres,
    measured,
    organized_points,
    point_dtype,
    record_array,
)


@pytest.mark.parametrize("kind", [float, np.float64, np.float32])
def test_points_are_16_byte_records_whatever_the_intrinsics_type(kind):
    """CameraInfo's intrinsics are float64 numpy values: the cloud stays float32 records."""
    depth = np.array([[0.0, 2.0, np.nan], [4.0, 25.0, -1.0]], np.float32)
    labels = np.array([[1, 2, 3], [4, 5, 6]], np.uint8)
    intrinsics = Intrinsics(*(kind(v) for v in (100.0, 50.0, 1.0, 0.5)))
    points = organized_points(depth, labels, labels + 10, intrinsics, max_depth_m=20.0)
    assert points.dtype == point_dtype(True) and points.shape == (2, 3)
    assert points.flags.c_contiguous and points.nbytes == 6 * 16
    np.testing.assert_array_equal(np.isnan(points["z"]), [[True, False, True], [False, True, True]])
    assert points["z"][0, 1] == 2.0 and points["z"][1, 0] == 4.0
    assert points["x"][0, 1] == pytest.approx((1 - 1.0) * 2.0 / 100.0)
    assert points["x"][1, 0] == pytest.approx((0 - 1.0) * 4.0 / 100.0)
    assert points["y"][1, 0] == pytest.approx((1 - 0.5) * 4.0 / 50.0)
    np.testing.assert_array_equal(points["label"], labels)
    np.testing.assert_array_equal(points["confidence"], labels + 10)
    records = np.frombuffer(points.tobytes(), np.uint8).reshape(6, 16)
    assert not records[:, 14:].any()  # padding is zero, never leftover memory


def test_without_confidence_the_field_is_absent_and_its_byte_zero():
    labels = np.full((2, 2), 7, np.uint8)
    points = organized_points(np.ones((2, 2), np.float32), labels, None, Intrinsics(1, 1, 0, 0), 5)
    assert points.dtype.names == ("x", "y", "z", "label")
    assert not np.frombuffer(points.tobytes(), np.uint8).reshape(4, 16)[:, 13:].any()


def test_a_reused_record_array_is_built_into_and_replaced_only_for_another_size():
    """The node builds every frame of a camera into one array; a frame's cloud is what
    that frame's depth and labels give, whatever the array held before."""
    records = record_array(2, 3)
    intrinsics = Intrinsics(100.0, 50.0, 1.0, 0.5)
    labels = np.array([[1, 2, 3], [4, 5, 6]], np.uint8)
    first = organized_points(np.full((2, 3), 2.0, np.float32), labels, labels, intrinsics, 20.0)
    records[:] = 99.0  # leftovers of an earlier frame
    depth = np.array([[0.0, 2.0, 3.0], [4.0, 25.0, 2.0]], np.float32)
    points = organized_points(depth, labels, labels, intrinsics, 20.0, out=records)
    assert np.shares_memory(points, records)
    np.testing.assert_array_equal(
        np.isnan(points["z"]), [[True, False, False], [False, True, False]]
    )
    np.testing.assert_array_equal(points["label"], labels)
    assert not np.frombuffer(points.tobytes(), np.uint8).reshape(6, 16)[:, 14:].any()
    np.testing.assert_array_equal(first["z"], 2.0)  # an earlier result is not overwritten
    assert record_array(2, 3, records) is records
    assert record_array(3, 2, records).shape == (3, 2, 4)


@pytest.mark.parametrize("shape", [(480, 640), (333, 641)])
def test_a_cloud_built_in_bands_is_the_whole_image_definition(shape):
    """Clouds larger than one band (and sizes no band divides) are built band by band: every
    point is what the definition gives for its pixel, the last rows included."""
    height, width = shape
    rng = np.random.default_rng(1)
    depth = rng.uniform(-1.0, 25.0, shape).astype(np.float32)
    labels = rng.integers(0, 12, shape, dtype=np.uint8)
    confidence = rng.integers(0, 256, shape, dtype=np.uint8)
    k = Intrinsics(500.0, 480.0, width / 2 - 3.5, height / 2 + 1.25)
    records = record_array(height, width)
    records[:] = 99.0  # leftovers: every byte must be written
    points = organized_points(depth, labels, confidence, k, 20.0, out=records)
    assert height * width > BAND_PIXELS  # more than one band
    with np.errstate(invalid="ignore"):
        z = np.where((depth > 0) & (depth <= 20.0), depth, np.float32(np.nan))
    rays_x = ((np.arange(width) - k.cx) / k.fx).astype(np.float32)
    rays_y = ((np.arange(height) - k.cy) / k.fy).astype(np.float32)
    np.testing.assert_array_equal(points["z"], z)
    np.testing.assert_array_equal(points["x"], rays_x[None, :] * z)
    np.testing.assert_array_equal(points["y"], rays_y[:, None] * z)
    np.testing.assert_array_equal(points["label"], labels)
    np.testing.assert_array_equal(points["confidence"], confidence)
    assert not np.frombuffer(points.tobytes(), np.uint8).reshape(-1, 16)[:, 14:].any()


def test_depth_units_and_nearest_resize():
    millimetres = np.array([[1000, 2000], [0, 65535]], "<u2")
    metres = depth_in_metres(millimetres, "16UC1", (4, 4))
    assert metres.dtype == np.float32 and metres.shape == (4, 4)
    assert set(np.unique(metres)) == {0.0, 1.0, 2.0, np.float32(65.535)}  # never blended
    np.testing.assert_array_equal(depth_in_metres(np.ones((2, 2), "<f4"), "32FC1", (2, 2)), 1.0)


def test_no_measurement_is_nan_for_every_kind_of_bad_value():
    """0, NaN, negative, +-inf and beyond the limit are NaN; everything else is kept exactly
    (checked against the definition on a large image, where OpenCV takes its SIMD path)."""
    rng = np.random.default_rng(0)
    depth = rng.uniform(-2.0, 25.0, (480, 640)).astype(np.float32)
    depth[::7, ::3], depth[::5, ::2] = np.nan, 0.0
    depth[1, 1], depth[2, 2], depth[3, 3] = np.inf, -np.inf, 20.0
    with np.errstate(invalid="ignore"):
        expected = np.where((depth > 0) & (depth <= 20.0), depth, np.nan)
    np.testing.assert_array_equal(measured(depth, 20.0), expected)
    assert measured(depth, 20.0)[3, 3] == 20.0  # the limit itself is a measurement


def test_big_endian_millimetres_read_as_their_value():
    millimetres = np.array([[1000, 2500]], ">u2")
    np.testing.assert_array_equal(depth_in_metres(millimetres, "16UC1", (2, 1)), [[1.0, 2.5]])
