"""Ordinary mistakes on the ``bisenet`` command line: one exact ``error:`` line, status 1
(2 for usage errors), inputs checked before a model loads, nothing created on the way."""

from __future__ import annotations

from pathlib import Path

import pytest

from bisenet_ros.cli import main

pytest.importorskip("torch")


@pytest.fixture
def workdir(tmp_path, monkeypatch, camvid_dir):
    """A folder with an empty and a garbage model, configs with mistakes, a real frame."""
    monkeypatch.chdir(tmp_path)
    Path("empty.pt").write_bytes(b"")
    Path("empty.onnx").write_bytes(b"")
    Path("garbage.onnx").write_bytes(b"junk")
    weights = Path(__file__).resolve().parents[1] / "bisenet_ros" / "weights"
    Path("renamed.pt").write_bytes((weights / "bisenetv2_camvid.onnx").read_bytes())
    Path("renamed.onnx").write_bytes((weights / "bisenetv2_camvid.pt").read_bytes())
    Path("typo.yaml").write_text("trian:\n  max_iter: 10\n")
    Path("nested_typo.yaml").write_text("train:\n  max_itr: 10\n")
    Path("broken.yaml").write_text("train: [1, 2\n")
    Path("ok.yaml").write_text(
        f"data:\n  root: {camvid_dir}\ntrain:\n  max_iter: 10\n  warmup_iters: 0\n  out_dir: run\n"
    )
    Path("run").mkdir()
    Path("run/last.pt").write_bytes(b"PK\x03\x04 not a zip")
    Path("frames").mkdir()
    Path("notes.txt").write_text("not an image")
    frame = next((camvid_dir / "test" / "images").glob("*.jpg"))
    Path("frame.jpg").write_bytes(frame.read_bytes())
    return tmp_path


def error_line(capsys, args: list[str]) -> str:
    """The only line on stderr of a command that must fail with status 1."""
    assert main(args) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()  # one line, no traceback
    return line


EXACT = [
    (["infer", "empty.pt", "missing.jpg", "-o", "out"],
     "bisenet infer: error: input missing.jpg does not exist"),
    (["infer", "empty.pt", "notes.txt", "-o", "out"],
     "bisenet infer: error: notes.txt: not an image (.jpg, .jpeg, .png, .bmp, .tif, .tiff, "
     ".webp), a folder of images, a video (.mp4, .avi, .mkv, .mov, .webm) or a rosbag2"),
    (["infer", "empty.pt", "frames", "-o", "out"],
     "bisenet infer: error: no images (.jpg, .jpeg, .png, .bmp, .tif, .tiff, .webp) in frames"),
    (["infer", "empty.pt", "frame.jpg", "-o", "out"],
     "bisenet infer: error: cannot read empty.pt as a PyTorch checkpoint (it is empty); is it "
     "damaged or truncated? Use the file torch.save / bisenet train wrote"),
    (["infer", "empty.onnx", "frame.jpg", "-o", "out"],
     "bisenet infer: error: empty.onnx is not an ONNX model: no graph (an empty or damaged "
     "file)"),
    (["infer", "garbage.onnx", "frame.jpg", "-o", "out"],
     "bisenet infer: error: garbage.onnx is not a readable ONNX model: truncated or malformed "
     "protobuf"),
    (["infer", "frames", "frame.jpg", "-o", "out"],
     "bisenet infer: error: frames is a folder, not a model file"),
    (["infer", "renamed.pt", "frame.jpg", "-o", "out"],
     "bisenet infer: error: renamed.pt holds an ONNX graph, not what its name says: rename it "
     "to renamed.onnx"),
    (["infer", "renamed.onnx", "frame.jpg", "-o", "out"],
     "bisenet infer: error: renamed.onnx holds a PyTorch checkpoint, not what its name says: "
     "rename it to renamed.pt"),
    (["train", "--config", "typo.yaml"],
     "bisenet train: error: unknown config key trian; did you mean train? (augment, data, "
     "eval, loss, model, train)"),
    (["train", "--config", "missing.yaml"],
     "bisenet train: error: [Errno 2] No such file or directory: 'missing.yaml'"),
    (["train", "--config", "ok.yaml", "--resume", "run/nothere.pt"],
     "bisenet train: error: --resume: no training state at run/nothere.pt"),
    (["check-dataset", "--root", "frames"],
     "bisenet check-dataset: error: split 'train' not found: no folder frames/train (folders "
     "in frames: none)"),
    (["evaluate", "garbage.onnx", "--root", "frames"],
     "bisenet evaluate: error: garbage.onnx: evaluate takes a checkpoint (.pt/.pth), the one "
     "the graph was exported from"),
    (["evaluate", "empty.pt", "--root", "nope"],
     "bisenet evaluate: error: dataset folder not found: nope"),
    (["export", "onnx", "empty.pt"],
     "bisenet export: error: cannot read empty.pt as a PyTorch checkpoint (it is empty); is it "
     "damaged or truncated? Use the file torch.save / bisenet train wrote"),
    (["export", "int8", "empty.pt", "--calibration", "nope"],
     "bisenet export: error: calibration folder nope does not exist"),
]  # fmt: skip


@pytest.mark.parametrize("args, line", EXACT, ids=[" ".join(a[:2]) for a, _ in EXACT])
def test_one_exact_error_line(workdir, capsys, args, line):
    before = sorted(p.name for p in workdir.iterdir())
    assert error_line(capsys, args) == line
    assert sorted(p.name for p in workdir.iterdir()) == before  # no output folder, no file


def test_drivable_classes_the_model_lacks(workdir, capsys, model_file):
    """Checked against the loaded model's classes before any output is written."""
    args = ["infer", str(model_file), "frame.jpg", "-o", "out", "--drivable-classes", "3", "300"]
    line = error_line(capsys, args)
    assert line == "bisenet infer: error: --drivable-classes [300]: the model's classes are 0 to 10"
    assert not (workdir / "out").exists()


@pytest.mark.parametrize(
    "args, start",
    [
        (["train", "--config", "nested_typo.yaml"],
         "bisenet train: error: unknown config key train.max_itr; did you mean train.max_iter?"),
        (["train", "--config", "broken.yaml"],
         "bisenet train: error: broken.yaml is not valid YAML: while parsing a flow sequence"),
        (["train", "--config", "ok.yaml", "--resume", "run/last.pt"],
         "bisenet train: error: cannot read run/last.pt as a PyTorch checkpoint"),
        (["train", "--config", "ok.yaml", "train.lr=O.01"],
         "bisenet train: error: train.lr must be a number, not 'O.01'"),
        (["train", "--config", "ok.yaml", "train.channels_last=maybe"],
         "bisenet train: error: train.channels_last must be true or false, not 'maybe'"),
        (["train", "--config", "ok.yaml", "augment.crop_size=[a, 64]"],
         "bisenet train: error: augment.crop_size must be a list of integers, not ['a', 64]"),
        (["train", "--config", "ok.yaml", "train.batch_size=1"],
         "bisenet train: error: invalid training config: train.batch_size must be at least 2 per "
         "process"),
        (["train", "--config", "ok.yaml", "eval.scales=[0]", "loss.ohem_thresh=2"],
         "bisenet train: error: invalid training config: loss.ohem_thresh must be above 0 and at "
         "most 1, or null, not 2; eval.scales must be factors from 0.25 to 4, not [0]"),
        (["train", "--config", "ok.yaml", "loss.class_weights=[1, 2]"],
         "bisenet train: error: loss.class_weights lists 2 weights for the dataset's 11 classes"),
    ],
)  # fmt: skip
def test_one_error_line_starting_with(workdir, capsys, args, start):
    assert error_line(capsys, args).startswith(start)


@pytest.mark.parametrize(
    "args, start",
    [
        (["check-dataset", "--format", "kitti"],
         "bisenet check-dataset: error: argument --format: invalid choice: 'kitti'"),
        (["infer", "m.pt", "x.jpg", "-o", "o", "--resize-mode", "crop"],
         "bisenet infer: error: argument --resize-mode: invalid choice: 'crop'"),
        (["train"], "bisenet train: error: the following arguments are required: --config"),
        (["evaluate", "m.pt", "--scales", "0"],
         "bisenet evaluate: error: argument --scales: 0 is out of range: a number from 0.25"),
        (["evaluate", "m.pt", "--input-size", "10", "10"],
         "bisenet evaluate: error: argument --input-size: 10 is out of range: an integer at"),
        (["infer", "m.pt", "x.jpg", "-o", "o", "--alpha", "2"],
         "bisenet infer: error: argument --alpha: 2 is out of range: a number from 0.0 to 1.0"),
        (["infer", "m.pt", "x.jpg", "-o", "o", "--threads", "two"],
         "bisenet infer: error: argument --threads: 'two' is not an integer"),
        (["bench", "m.pt", "--frames", "f", "--sizes", "16x16"],
         "bisenet bench: error: argument --sizes: 16x16: each side must be at least 32"),
        (["bench", "m.pt", "--frames", "f", "--iterations", "0"],
         "bisenet bench: error: argument --iterations: 0 is out of range: an integer at least 1"),
        (["export", "int8", "m.pt", "--calibration", "f", "--images", "0"],
         "bisenet export int8: error: argument --images: 0 is out of range: an integer at least 1"),
        (["demo", "--rate", "0"],
         "bisenet demo: error: argument --rate: 0 is out of range: a number from 0.1 to 1000.0"),
    ],
)  # fmt: skip
def test_usage_errors_exit_2(workdir, capsys, args, start):
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(start)


def test_verbose_shows_the_traceback(workdir):
    with pytest.raises(FileNotFoundError, match="input missing.jpg does not exist"):
        main(["-v", "infer", "empty.pt", "missing.jpg", "-o", "out"])
