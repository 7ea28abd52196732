"""``bisenet infer`` on real CamVid frames: a folder, a video and a rosbag2 written here."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import CAMVID_PATH as CAMVID
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from bisenet_ros.cli import main
from bisenet_ros.inference import Segmenter
from bisenet_ros.inference.drivable import DrivableConfig, drivable_mask

TOPIC = "/camera/image_raw"
TYPES = get_typestore(Stores.LATEST)


@pytest.fixture(scope="module")
def frames() -> list[tuple[str, np.ndarray]]:
    if not CAMVID.is_dir():
        pytest.skip(f"real data not present: {CAMVID}")
    files = sorted((CAMVID / "test" / "images").glob("*.jpg"))[::60]
    return [(f.stem, cv2.imread(str(f))) for f in files]


def write_bag(path: Path, frames: list[tuple[str, np.ndarray]], storage: StoragePlugin) -> None:
    """Camera frames as sensor_msgs/Image bgr8 plus an unrelated topic, 10 Hz."""
    Image, Header, Time = (
        TYPES.types[t]
        for t in ("sensor_msgs/msg/Image", "std_msgs/msg/Header", "builtin_interfaces/msg/Time")
    )
    String = TYPES.types["std_msgs/msg/String"]
    with Writer(path, version=9, storage_plugin=storage) as writer:
        images = writer.add_connection(TOPIC, Image.__msgtype__, typestore=TYPES)
        notes = writer.add_connection("/notes", String.__msgtype__, typestore=TYPES)
        for i, (_, frame) in enumerate(frames):
            stamp = 1_700_000_000 * 10**9 + i * 100_000_000
            header = Header(stamp=Time(sec=stamp // 10**9, nanosec=stamp % 10**9), frame_id="cam")
            height, width = frame.shape[:2]
            msg = Image(
                header=header,
                height=height,
                width=width,
                encoding="bgr8",
                is_bigendian=0,
                step=width * 3,
                data=frame.reshape(-1),
            )
            writer.write(images, stamp, TYPES.serialize_cdr(msg, Image.__msgtype__))
            note = TYPES.serialize_cdr(String(data=f"frame {i}"), String.__msgtype__)
            writer.write(notes, stamp + 1, note)


@pytest.mark.parametrize("storage", [StoragePlugin.SQLITE3, StoragePlugin.MCAP])
def test_infer_on_rosbag2_writes_readable_bag(tmp_path, frames, model_file, storage):
    source, copy, out = tmp_path / "drive", tmp_path / "segmented", tmp_path / "out"
    write_bag(source, frames, storage)
    cache = tmp_path / "cache"
    code = main(
        [
            "infer",
            str(model_file),
            str(source),
            "-o",
            str(out),
            "--backend",
            "onnxruntime",
            "--output-bag",
            str(copy),
            "--save",
            "labels",
            "--cache-dir",
            str(cache),
        ]
    )
    assert code == 0
    segmenter = Segmenter.from_file(model_file, backend="onnxruntime", cache_dir=cache)
    expected = {}
    for stem, frame in frames:
        (result,) = segmenter.segment(frame, channel_order="bgr")
        expected[stem] = result.ids

    with Reader(copy) as reader:
        topics = {c.topic: c.msgcount for c in reader.connections}
        assert topics == {
            TOPIC: len(frames),
            "/notes": len(frames),
            f"{TOPIC}/labels": len(frames),
            f"{TOPIC}/drivable": len(frames),
        }
        labels, drivable = [], []
        for connection, timestamp, raw in reader.messages():
            msg = TYPES.deserialize_cdr(raw, connection.msgtype)
            if connection.topic == f"{TOPIC}/labels":
                assert msg.encoding == "mono8" and msg.header.frame_id == "cam"
                stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
                assert stamp == timestamp
                labels.append(msg.data.reshape(msg.height, msg.width))
            if connection.topic == f"{TOPIC}/drivable":
                drivable.append(msg.data.reshape(msg.height, msg.width))
    config = DrivableConfig(segmenter.manifest.drivable_ids)
    for ids, mask, (stem, _) in zip(labels, drivable, frames, strict=True):
        assert np.array_equal(ids, expected[stem])
        assert np.array_equal(mask, drivable_mask(expected[stem], config))
    written = sorted(out.glob("*_labels.png"))
    assert len(written) == len(frames)
    assert np.array_equal(cv2.imread(str(written[0]), cv2.IMREAD_UNCHANGED), labels[0])


@pytest.mark.parametrize("storage", [StoragePlugin.MCAP, StoragePlugin.SQLITE3])
def test_a_bag_without_metadata_reads_from_its_storage_file(
    tmp_path, frames, model_file, storage, capsys
):
    """A recording cut off before it closed has no metadata.yaml: the folder is one error line
    naming `ros2 bag reindex`, its storage file alone is segmented and copied."""
    source = tmp_path / "drive"
    write_bag(source, frames[:2], storage)
    (source / "metadata.yaml").unlink()
    (file,) = [f for f in source.iterdir()]
    common = ["--save", "labels", "--cache-dir", str(tmp_path / "cache")]

    assert main(["infer", str(model_file), str(source), "-o", str(tmp_path / "o1"), *common]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert f"{source} holds rosbag2 storage ({file.name}) but no metadata.yaml" in line, line
    assert f"ros2 bag reindex {source}" in line and not (tmp_path / "o1").exists()

    copy = tmp_path / "copy"
    out = tmp_path / "o2"
    assert main(["infer", str(model_file), str(file), "-o", str(out), "--output-bag", str(copy),
                 *common]) == 0  # fmt: skip
    assert len(list(out.glob("*_labels.png"))) == 2
    with Reader(copy) as reader:
        topics = {c.topic: c.msgcount for c in reader.connections}
    assert topics == {TOPIC: 2, "/notes": 2, f"{TOPIC}/labels": 2, f"{TOPIC}/drivable": 2}


@pytest.mark.parametrize("storage", [StoragePlugin.MCAP, StoragePlugin.SQLITE3])
def test_a_damaged_bag_is_one_error_line(tmp_path, frames, model_file, storage, capsys):
    source = tmp_path / "drive"
    write_bag(source, frames[:2], storage)
    (file,) = [f for f in source.iterdir() if f.suffix in (".mcap", ".db3")]
    with open(file, "r+b") as f:
        f.truncate(file.stat().st_size // 2)
    out = tmp_path / "out"
    assert main(["infer", str(model_file), str(source), "-o", str(out)]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()  # one line, no traceback
    assert line.startswith(f"bisenet infer: error: cannot read the rosbag2 {source}: "), line
    assert line.endswith("(is it damaged, or a recording cut off before it closed?)"), line
    assert not out.exists()


def test_infer_on_folder_and_video(tmp_path, frames, model_file):
    folder, out = tmp_path / "frames", tmp_path / "out"
    folder.mkdir()
    for stem, frame in frames:
        cv2.imwrite(str(folder / f"{stem}.png"), frame)
    video_in = tmp_path / "drive.avi"
    writer = cv2.VideoWriter(str(video_in), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (480, 360))
    for _, frame in frames:
        writer.write(frame)
    writer.release()
    common = ["--backend", "onnxruntime", "--cache-dir", str(tmp_path / "cache")]
    assert (
        main(
            [
                "infer",
                str(model_file),
                str(folder),
                "-o",
                str(out / "a"),
                "--save",
                "labels",
                "color",
                "overlay",
                "drivable",
                "confidence",
                *common,
            ]
        )
        == 0
    )
    stem = frames[0][0]
    for kind in ("labels", "color", "overlay", "drivable", "confidence"):
        picture = cv2.imread(str(out / "a" / f"{stem}_{kind}.png"), cv2.IMREAD_UNCHANGED)
        assert picture.shape[:2] == (360, 480), kind
    assert (
        main(
            [
                "infer",
                str(model_file),
                str(video_in),
                "-o",
                str(out / "b"),
                "--save",
                "--video",
                str(out / "overlay.avi"),
                *common,
            ]
        )
        == 0
    )
    check = cv2.VideoCapture(str(out / "overlay.avi"))
    assert int(check.get(cv2.CAP_PROP_FRAME_COUNT)) == len(frames)
    ok, first = check.read()
    assert ok and first.shape == (360, 480, 3)
    assert not list((out / "b").glob("*.png"))


def test_infer_rejects_unknown_topic(tmp_path, frames, model_file, capsys):
    write_bag(tmp_path / "drive", frames[:1], StoragePlugin.SQLITE3)
    command = ["infer", str(model_file), str(tmp_path / "drive"), "-o", str(tmp_path / "o"),
               "--topic", "/nope", "--cache-dir", str(tmp_path / "cache")]  # fmt: skip
    assert main(command) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()  # one line, no traceback
    assert line.startswith("bisenet infer: error: ") and "no image topic '/nope'" in line
    with pytest.raises(ValueError, match="no image topic '/nope'"):
        main(["-v", *command])  # -v: the exception itself, with its traceback


@pytest.mark.parametrize(
    "args, says",
    [
        (["infer", "no_such_model.pt", "frame.jpg", "-o", "out"], "input frame.jpg does not exist"),
        (["train", "--config", "no_such_config.yaml"], "no_such_config.yaml"),
        (["export", "onnx", "no_such_weights.pt"], "no_such_weights.pt"),
    ],
)
def test_ordinary_mistakes_are_one_error_line(tmp_path, args, says):
    """The real command: a missing file is one `error:` line on stderr and status 1."""
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-m", "bisenet_ros.cli", *args],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 1, run.stderr
    (line,) = run.stderr.strip().splitlines()
    if args[0] != "infer" and importlib.util.find_spec("torch") is None:
        says = "needs torch"  # training and export need PyTorch (the jazzy-py310 leg has none)
    assert line.startswith(f"bisenet {args[0]}: error: ") and says in line, line


# --- frames that cannot be read --------------------------------------------------------------


def test_unreadable_files_are_named_skipped_and_counted(tmp_path, frames, model_file, caplog):
    """A truncated JPEG (OpenCV alone would return it half grey) and a file that is no image,
    among good ones: the good ones are segmented, the others named once and counted."""
    folder, out = tmp_path / "frames", tmp_path / "out"
    folder.mkdir()
    (_, first), (_, second) = frames[:2]
    cv2.imwrite(str(folder / "a_good.jpg"), first)
    jpeg = cv2.imencode(".jpg", second)[1].tobytes()
    (folder / "b_truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (folder / "c_notes.png").write_text("not an image")
    cv2.imwrite(str(folder / "d_good.png"), second)
    command = ["infer", str(model_file), str(folder), "-o", str(out), "--save", "labels"]
    assert main(command) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a_good_labels.png", "d_good_labels.png"]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(w.startswith("skipped b_truncated: ") and "(corrupt;" in w for w in warnings)
    assert warnings[-1] == f"skipped 2 unreadable frames of {folder} (corrupt 2)", warnings


def test_a_bag_is_decoded_as_the_node_decodes_and_bad_messages_are_skipped(
    tmp_path, frames, model_file, caplog
):
    """bgr8 and yuv422 frames (a camera's own format, which the node reads) are segmented as
    the node would; an unsupported encoding and a wrong data length are skipped and counted,
    and the copy of the bag still holds every original message."""
    from test_image_conversion import encode

    from bisenet_ros.image_decoding import image_to_array

    rgb = cv2.cvtColor(frames[0][1], cv2.COLOR_BGR2RGB)
    Image = TYPES.types["sensor_msgs/msg/Image"]
    Header, Time = TYPES.types["std_msgs/msg/Header"], TYPES.types["builtin_interfaces/msg/Time"]

    def message(encoding: str, i: int, cut: int = 0):
        ros = encode(rgb, encoding)
        data = np.frombuffer(bytes(ros.data), np.uint8)
        header = Header(stamp=Time(sec=1_700_000_000 + i, nanosec=0), frame_id="cam")
        msg = Image(header=header, height=ros.height, width=ros.width, encoding=ros.encoding,
                    is_bigendian=0, step=ros.step, data=data[: len(data) - cut])  # fmt: skip
        return ros, msg

    sent = [message("bgr8", 0), message("yuv422", 1), message("mono8", 2),
            message("bgr8", 3, cut=100), message("bgr8", 4)]  # fmt: skip
    sent[2][1].encoding = "32FC1"  # a depth image on the camera topic
    source, copy = tmp_path / "drive", tmp_path / "copy"
    with Writer(source, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        connection = writer.add_connection(TOPIC, Image.__msgtype__, typestore=TYPES)
        for _, msg in sent:
            stamp = msg.header.stamp.sec * 10**9
            writer.write(connection, stamp, TYPES.serialize_cdr(msg, Image.__msgtype__))

    out, cache = tmp_path / "out", tmp_path / "cache"
    command = ["infer", str(model_file), str(source), "-o", str(out), "--save", "labels",
               "--output-bag", str(copy), "--backend", "onnxruntime",
               "--cache-dir", str(cache)]  # fmt: skip
    assert main(command) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("unsupported encoding '32FC1'" in w and "(encoding;" in w for w in warnings)
    assert any("(data_length;" in w for w in warnings), warnings
    assert warnings[-1] == f"skipped 2 unreadable frames of {source} (encoding 1, data_length 1)"

    segmenter = Segmenter.from_file(model_file, backend="onnxruntime", cache_dir=cache)
    with Reader(copy) as reader:
        assert {c.topic: c.msgcount for c in reader.connections} == {
            TOPIC: 5,
            f"{TOPIC}/labels": 3,
            f"{TOPIC}/drivable": 3,
        }
        labels = {}
        for connection, _, raw in reader.messages():
            if connection.topic == f"{TOPIC}/labels":
                msg = TYPES.deserialize_cdr(raw, connection.msgtype)
                labels[msg.header.stamp.sec] = msg.data.reshape(msg.height, msg.width)
    for ros, msg in (sent[0], sent[1], sent[4]):
        image, order = image_to_array(ros)
        (expected,) = segmenter.segment(image, channel_order=order)
        assert np.array_equal(labels[msg.header.stamp.sec], expected.ids), msg.encoding
