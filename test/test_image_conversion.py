"""Image <-> numpy conversion without cv_bridge: every encoding, zero copy, bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

pytest.importorskip("sensor_msgs")

from sensor_msgs.msg import CompressedImage, Image  # noqa: E402

from bisenet_ros.image_decoding import (  # noqa: E402
    ImageError,
    check_compressed,
    check_raw,
    compressed_size,
    compressed_to_array,
    image_to_array,
)
from bisenet_ros.inference.views import as_rgb
from bisenet_ros.ros.image_conversion import array_to_image  # noqa: E402

BAYER_OFFSETS = {  # (row, col) of R and B in the 2x2 tile
    "bayer_rggb8": ((0, 0), (1, 1)),
    "bayer_bggr8": ((1, 1), (0, 0)),
    "bayer_gbrg8": ((1, 0), (0, 1)),
    "bayer_grbg8": ((0, 1), (1, 0)),
}


def _pack_422(rgb: np.ndarray, uyvy: bool) -> np.ndarray:
    """Pack RGB into 4:2:2 with BT.601 video-range YCbCr, as cameras send it."""
    r, g, b = (rgb[..., i].astype(np.float32) for i in range(3))
    y = 16 + 0.257 * r + 0.504 * g + 0.098 * b
    u = 128 - 0.148 * r - 0.291 * g + 0.439 * b
    v = 128 + 0.439 * r - 0.368 * g - 0.071 * b
    u = (u[:, 0::2] + u[:, 1::2]) / 2
    v = (v[:, 0::2] + v[:, 1::2]) / 2
    y0, y1 = y[:, 0::2], y[:, 1::2]
    quads = [u, y0, v, y1] if uyvy else [y0, u, y1, v]
    packed = np.stack(quads, axis=-1).reshape(rgb.shape[0], rgb.shape[1], 2)
    return np.clip(np.round(packed), 0, 255).astype(np.uint8)


def encode(rgb: np.ndarray, encoding: str) -> Image:
    """A camera-style Image of ``rgb`` (HxWx3 uint8) in ``encoding``."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if encoding == "mono16":
        return array_to_image(gray.astype(np.uint16) * 257, "mono16")
    if encoding in BAYER_OFFSETS:
        (rr, rc), (br, bc) = BAYER_OFFSETS[encoding]
        mosaic = rgb[..., 1].copy()
        mosaic[rr::2, rc::2] = rgb[rr::2, rc::2, 0]
        mosaic[br::2, bc::2] = rgb[br::2, bc::2, 2]
        return array_to_image(mosaic, encoding)
    arrays = {
        "rgb8": rgb,
        "bgr8": rgb[..., ::-1],
        "rgba8": np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]),
        "bgra8": np.dstack([rgb[..., ::-1], np.full(rgb.shape[:2], 255, np.uint8)]),
        "mono8": gray,
        "yuv422": _pack_422(rgb, uyvy=True),
        "uyvy": _pack_422(rgb, uyvy=True),
        "yuyv": _pack_422(rgb, uyvy=False),
        "yuv422_yuy2": _pack_422(rgb, uyvy=False),
    }
    return array_to_image(arrays[encoding], encoding)


@pytest.fixture(scope="module")
def rgb(camvid_dir) -> np.ndarray:
    path = sorted((camvid_dir / "test" / "images").glob("*.jpg"))[0]
    return cv2.resize(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB), (320, 240))


# mean absolute error allowed against the source: lossy encodings lose detail
TOLERANCE = {"yuv422": 4, "uyvy": 4, "yuyv": 4, "yuv422_yuy2": 4}
TOLERANCE |= dict.fromkeys(BAYER_OFFSETS, 12)


@pytest.mark.parametrize(
    "encoding",
    ["rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16", "yuv422", "uyvy", "yuyv",
     "yuv422_yuy2", *BAYER_OFFSETS],
)  # fmt: skip
def test_every_encoding_decodes_to_the_source(rgb, encoding):
    image, order = image_to_array(encode(rgb, encoding))
    if encoding.startswith("mono"):
        np.testing.assert_array_equal(image, cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
        return
    error = np.abs(as_rgb(image, order).astype(int) - rgb).mean()
    assert error <= TOLERANCE.get(encoding, 0), f"{encoding}: mean abs error {error:.2f}"
    # the wrong channel order would be far off: proves R and B are where they belong
    swapped = np.abs(as_rgb(image, order)[..., ::-1].astype(int) - rgb).mean()
    assert swapped > 2 * error + 5


def test_raw_rgb_is_zero_copy_and_honours_row_padding(rgb):
    msg = encode(rgb, "rgb8")
    image, order = image_to_array(msg)
    assert order == "rgb" and np.shares_memory(image, np.frombuffer(msg.data, np.uint8))
    padded = np.zeros((240, 320 * 3 + 64), np.uint8)
    padded[:, : 320 * 3] = rgb.reshape(240, -1)
    msg = Image(width=320, height=240, encoding="bgr8", step=padded.shape[1])
    msg.data = padded.tobytes()
    image, order = image_to_array(msg)
    assert order == "bgr" and np.array_equal(image, rgb)


def test_big_endian_mono16():
    values = np.arange(0, 65536, 256, dtype=np.uint16).reshape(16, 16)
    msg = Image(width=16, height=16, encoding="mono16", step=32, is_bigendian=1)
    msg.data = values.astype(">u2").tobytes()
    image, _ = image_to_array(msg)
    np.testing.assert_array_equal(image, (values >> 8).astype(np.uint8))


def test_array_to_image_round_trip(rgb):
    msg = array_to_image(rgb, "rgb8")
    assert (msg.width, msg.height, msg.step) == (320, 240, 960)
    assert np.array_equal(image_to_array(msg)[0], rgb)


@pytest.mark.parametrize(
    "msg, reason",
    [
        (Image(width=4, height=4, encoding="32FC1", step=16, data=bytes(64)), "encoding"),
        (Image(width=8, height=8, encoding="rgb8", step=24, data=bytes(10)), "data_length"),
        (Image(width=8, height=8, encoding="rgb8", step=5, data=bytes(40)), "data_length"),
        (Image(width=0, height=0, encoding="rgb8", step=0, data=b""), "empty"),
        (Image(width=100_000, height=100_000, encoding="mono8", step=100_000), "too_large"),
        (Image(width=33, height=8, encoding="yuv422", step=66, data=bytes(528)), "odd_width"),
        (Image(width=320, height=4, encoding="rgb8", step=960, data=bytes(3840)), "too_small"),
    ],
)
def test_bad_raw_frames(msg, reason):
    with pytest.raises(ImageError) as error:
        image_to_array(msg, max_pixels=1 << 26)
    assert error.value.reason == reason


def test_compressed(rgb):
    ok, jpeg = cv2.imencode(".jpg", rgb[..., ::-1])
    assert compressed_size(jpeg.tobytes()) == (320, 240)
    image, order = compressed_to_array(CompressedImage(format="jpeg", data=jpeg.tobytes()))
    assert order == "bgr" and np.abs(image[..., ::-1].astype(int) - rgb).mean() < 4
    ok, png = cv2.imencode(".png", rgb)
    assert compressed_size(png.tobytes()) == (320, 240)


def jpeg_of(rgb) -> bytes:
    return cv2.imencode(".jpg", rgb[..., ::-1])[1].tobytes()


def corrupt_inside_scan(jpeg: bytes) -> bytes:
    """Half the entropy-coded data replaced by zeros, every marker intact (EOI included):
    OpenCV returns a partly grey image for it and only libjpeg's stderr says why."""
    start = jpeg.index(b"\xff\xda")
    middle = (start + len(jpeg)) // 2
    return jpeg[:middle] + bytes(len(jpeg) - 2 - middle) + b"\xff\xd9"


@pytest.mark.parametrize(
    "make, fmt, reason",
    [
        (lambda j: j[:2000], "jpeg", "corrupt"),  # truncated, no end-of-image marker
        (lambda j: j[: len(j) // 2] + b"\xff\xd9", "jpeg", "corrupt"),  # truncated, EOI kept
        (corrupt_inside_scan, "jpeg", "corrupt"),
        (lambda j: b"\xff\xd8garbage", "jpeg", "corrupt"),
        (lambda j: b"not an image", "jpeg", "decode"),
        (lambda j: b"", "jpeg", "empty"),
        (lambda j: j, "png", "format"),  # mislabelled
        (lambda j: j, "compressedDepth png", "format"),
        (lambda j: j, "h264", "format"),
    ],
)
def test_bad_compressed_frames(rgb, make, fmt, reason):
    data = make(jpeg_of(rgb))
    if reason == "corrupt" and data.startswith(b"\xff\xd8\xff"):
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        assert decoded is None or decoded.shape == (240, 320, 3)  # what OpenCV would make of it
    with pytest.raises(ImageError) as error:
        compressed_to_array(CompressedImage(format=fmt, data=data))
    assert error.value.reason == reason


def test_corrupt_png_is_rejected(rgb):
    png = cv2.imencode(".png", rgb)[1].tobytes()
    for data in (png[: len(png) // 2], png[:100] + bytes(200) + png[300:]):
        with pytest.raises(ImageError) as error:
            compressed_to_array(CompressedImage(format="png", data=data))
        assert error.value.reason == "corrupt"


def test_image_transport_formats_are_understood(rgb):
    for fmt in ("", "jpeg", "bgr8; jpeg compressed bgr8", "rgb8; jpeg compressed bgr8"):
        image, _ = compressed_to_array(CompressedImage(format=fmt, data=jpeg_of(rgb)))
        assert image.shape == (240, 320, 3)
    png = cv2.imencode(".png", rgb)[1].tobytes()
    image, _ = compressed_to_array(CompressedImage(format="rgb8; png compressed rgb8", data=png))
    assert image.shape == (240, 320, 3)


def test_jpeg_bomb_rejected_from_its_header(rgb):
    """A JPEG claiming 60000x60000 is rejected before the decoder allocates anything."""
    ok, jpeg = cv2.imencode(".jpg", rgb)
    data = bytearray(jpeg.tobytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = (60000).to_bytes(2, "big") * 2
    with pytest.raises(ImageError) as error:
        compressed_to_array(CompressedImage(format="jpeg", data=bytes(data)), max_pixels=1 << 26)
    assert error.value.reason == "too_large"


@pytest.mark.parametrize("marker", [b"\xff\xc0", b"\xff\xc2"], ids=["baseline", "progressive"])
def test_jpeg_bomb_behind_fill_bytes_is_still_rejected_unread(rgb, marker):
    """Fill bytes (0xFF, legal before any marker) in front of the frame header, and a
    progressive SOF: the size is still read from the header, so the frame is refused
    before decoding, not after."""
    params = [cv2.IMWRITE_JPEG_PROGRESSIVE, 1] if marker == b"\xff\xc2" else []
    data = bytearray(cv2.imencode(".jpg", rgb, params)[1].tobytes())
    sof = data.index(marker)
    data[sof + 5 : sof + 9] = (20000).to_bytes(2, "big") * 2
    data[sof:sof] = b"\xff" * 7
    msg = CompressedImage(format="jpeg", data=bytes(data))
    assert compressed_size(msg.data) == (20000, 20000)
    with pytest.raises(ImageError) as error:
        check_compressed(msg, max_pixels=1 << 26)  # what the node runs on arrival
    assert error.value.reason == "too_large"


@pytest.mark.parametrize(
    "data",
    [b"\xff\xd8\xff\xe0garbage", b"\x89PNG\r\n\x1a\n" + b"\x00" * 4 + b"JUNK" + b"\x00" * 8],
    ids=["jpeg", "png"],
)
def test_a_frame_whose_header_gives_no_size_is_refused_unread(data):
    with pytest.raises(ImageError) as error:
        check_compressed(CompressedImage(format="", data=data))
    assert error.value.reason == "corrupt" and "gives no image size" in error.value.detail


def test_echoed_input_is_cut_short():
    msg = Image(height=64, width=64, encoding="x" * 10_000, step=192)
    with pytest.raises(ImageError) as error:
        check_raw(msg)
    assert len(error.value.detail) < 120 and "10000 characters" in error.value.detail
