"""The training loop on a few real CamVid frames: loss, optimiser, DDP, resume, fine-tuning.

Runs that must behave like separate jobs (torchrun, a killed process) are real subprocesses
of ``bisenet train``; all of them use tiny crops and a handful of iterations.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

torch = pytest.importorskip("torch")  # the jazzy-py310 leg runs without PyTorch

from bisenet_ros.models import load_checkpoint
from bisenet_ros.training.config import ConfigError, load_config
from bisenet_ros.training.losses import OhemCrossEntropy
from bisenet_ros.training.optim import WarmupPoly, param_groups
from bisenet_ros.training.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_camvid(camvid_dir, tmp_path_factory) -> Path:
    """Six training and two validation frames of the real CamVid, linked into a new root."""
    root = tmp_path_factory.mktemp("camvid")
    for split, count in (("train", 6), ("val", 2)):
        for sub in ("images", "labels"):
            (root / split / sub).mkdir(parents=True)
        for image in sorted((camvid_dir / split / "images").glob("*.jpg"))[:count]:
            label = camvid_dir / split / "labels" / f"{image.stem}.png"
            (root / split / "images" / image.name).symlink_to(image)
            (root / split / "labels" / label.name).symlink_to(label)
    return root


def tiny_config(root: Path, out_dir: Path, **train) -> dict:
    """A config for a few iterations on 64x80 crops, with the given train.* settings."""
    settings = {
        "out_dir": str(out_dir),
        "batch_size": 2,
        "max_iter": 4,
        "lr": 0.01,
        "warmup_iters": 1,
        "num_workers": 0,
        "eval_every": 0,
        "checkpoint_every": 2,
        "progress": False,
        "deterministic": True,
        "threads": 1,
    }
    settings.update(train)
    return {
        "data": {"root": str(root), "input_size": [96, 128]},
        "augment": {"crop_size": [64, 80], "scale_range": [0.2, 0.4]},
        "train": settings,
    }


def write_config(config: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


def bisenet_train(
    config_path: Path, *extra: str, launcher: list[str] | None = None, new_group: bool = False
):
    """Start ``bisenet train`` as its own process (by default ``python -m bisenet_ros.cli``),
    with ``new_group`` in a process group of its own, as a shell starts a job."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = launcher or [sys.executable, "-m", "bisenet_ros.cli"]
    command = [*command, "train", "--config", str(config_path), *extra]
    return subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=new_group,
    )  # fmt: skip


def finish(process: subprocess.Popen, timeout: float = 300) -> None:
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output[-3000:]


def model_state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=False)["model"]


def test_config_rejects_unknown_keys_and_applies_overrides(tmp_path):
    path = write_config({"train": {"max_iter": 500}}, tmp_path / "c.yaml")
    config = load_config(path, ["train.lr=0.2", "augment.crop_size=[64, 64]"])
    assert config["train"]["max_iter"] == 500 and config["train"]["lr"] == 0.2
    assert config["augment"]["crop_size"] == [64, 64]
    with pytest.raises(ConfigError, match=r"train.max_iters; did you mean train.max_iter\?"):
        load_config(write_config({"train": {"max_iters": 5}}, tmp_path / "bad.yaml"))


def test_ohem_keeps_the_hard_pixels_and_at_least_the_minimum():
    # Pixel 0 is confidently right, pixels 1-3 are wrong; pixel 4 is ignored.
    logits = torch.tensor([[8.0, 0.0], [0.0, 1.0], [0.0, 2.0], [0.0, 3.0], [0.0, 9.0]])
    logits = logits.T.reshape(1, 2, 1, 5)
    labels = torch.tensor([[[0, 0, 0, 0, 255]]])
    per_pixel = torch.nn.functional.cross_entropy(
        logits, labels, reduction="none", ignore_index=255
    )
    hard = per_pixel[0, 0, 1:4]
    ohem = OhemCrossEntropy(thresh=0.7, min_kept_ratio=0.0)
    assert ohem(logits, labels) == pytest.approx(hard.mean().item())
    # With a minimum of all valid pixels the easy one is kept too: plain CE over valid pixels.
    all_valid = OhemCrossEntropy(thresh=0.7, min_kept_ratio=1.0)
    assert all_valid(logits, labels) == pytest.approx(per_pixel[0, 0, :4].mean().item())
    weighted = OhemCrossEntropy(thresh=None, class_weights=[2.0, 1.0])
    assert weighted(logits, labels) == pytest.approx(per_pixel[0, 0, :4].mean().item())


def test_weight_decay_only_on_conv_weights_and_heads_get_the_higher_lr():
    from bisenet_ros.models import build_model

    model = build_model("bisenetv2", 5, aux_heads=True)
    groups = param_groups(model, lr=0.1, weight_decay=1e-4, head_lr_mult=10)
    names = {id(p): n for n, p in model.named_parameters()}
    for group in groups:
        for param in group["params"]:
            name = names[id(param)]
            assert (group["weight_decay"] > 0) == (param.dim() == 4), name
            head = name.startswith(("head.", "aux"))
            assert group["lr"] == pytest.approx(1.0 if head else 0.1), name
    assert sum(len(g["params"]) for g in groups) == len(names)

    schedule = WarmupPoly(max_iter=100, warmup_iters=10, warmup_ratio=0.1, power=0.9)
    assert schedule(0) == pytest.approx(0.1) and schedule(10) == pytest.approx(1.0)
    assert schedule(55) == pytest.approx(0.5**0.9) and schedule(100) == 0.0


def test_loss_falls_on_real_frames(tiny_camvid, tmp_path):
    config = load_config(
        write_config(tiny_config(tiny_camvid, tmp_path, max_iter=25), tmp_path / "c.yaml")
    )
    trainer = Trainer(config)
    batch = next(iter(trainer._loader()))
    losses = [trainer.step(*batch) for _ in range(25)]
    assert sum(losses[-3:]) / 3 < 0.5 * sum(losses[:3]) / 3, losses


def test_bisenetv1_trains_with_its_two_weighted_aux_heads(tiny_camvid, tmp_path):
    config = tiny_config(tiny_camvid, tmp_path, max_iter=2)
    config["model"] = {"arch": "bisenetv1"}
    config["loss"] = {"aux_weights": [0.5, 0.25], "class_weights": [1.0] * 10 + [2.0]}
    trainer = Trainer(load_config(write_config(config, tmp_path / "c.yaml")))
    images, labels = next(iter(trainer._loader()))
    logits, aux = trainer.model(images)
    assert len(aux) == 2
    expected = trainer.criterion.criterion(logits, labels)
    expected += 0.5 * trainer.criterion.criterion(aux[0], labels)
    expected += 0.25 * trainer.criterion.criterion(aux[1], labels)
    assert trainer.criterion((logits, aux), labels).item() == pytest.approx(expected.item())
    assert math.isfinite(trainer.step(images, labels))


def test_a_training_state_is_read_with_its_manifest(tiny_camvid, tmp_path):
    """last.pt runs at the trained size with the trained classes, in every reader
    (evaluate, export, the node load it through load_checkpoint)."""
    config = tiny_config(tiny_camvid, tmp_path, max_iter=2)
    trainer = Trainer(load_config(write_config(config, tmp_path / "c.yaml")))
    trainer.run()
    model, manifest = load_checkpoint(tmp_path / "last.pt")
    assert manifest.to_dict() == trainer.manifest.to_dict()
    assert manifest.input_size == (96, 128) and manifest.class_names[3] == "road"
    assert manifest.drivable_ids == trainer.manifest.drivable_ids != []


# The CLI with every tensor in float64. BiSeNetV2 at its random initialisation is badly
# conditioned (logits around +-10, losses around 40), so float32 rounding differences between
# one big and two small batch reductions grow to percent level within two steps; in float64
# the same comparison holds to 1e-9 and a real discrepancy cannot hide behind rounding.
FLOAT64_CLI = """
import sys
import torch
torch.set_default_dtype(torch.float64)
from bisenet_ros.cli import main
sys.exit(main())
"""


def test_two_gloo_processes_match_one_process_with_the_same_global_batch(tiny_camvid, tmp_path):
    common = {"max_iter": 3, "checkpoint_every": 3, "lr": 0.01}
    one = tiny_config(tiny_camvid, tmp_path / "one", batch_size=4, **common)
    two = tiny_config(tiny_camvid, tmp_path / "two", batch_size=2, **common)
    for config in (one, two):
        # Batch statistics over the global batch, and no dropout (its masks depend on the
        # per-process batch shape).
        config["model"] = {"sync_bn": True, "dropout": 0.0}
    script = tmp_path / "float64_cli.py"
    script.write_text(FLOAT64_CLI)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc-per-node=2"]
    torchrun += [f"--master-port={port}", "--master-addr=127.0.0.1", str(script)]
    jobs = [
        bisenet_train(
            write_config(one, tmp_path / "one.yaml"), launcher=[sys.executable, str(script)]
        ),
        bisenet_train(write_config(two, tmp_path / "two.yaml"), launcher=torchrun),
    ]
    for job in jobs:
        finish(job)
    a, b = model_state(tmp_path / "one" / "last.pt"), model_state(tmp_path / "two" / "last.pt")
    assert a.keys() == b.keys()
    assert a["head.conv.conv.weight"].dtype == torch.float64
    torch.set_default_dtype(torch.float64)
    try:
        initial = Trainer(load_config(tmp_path / "one.yaml")).model.state_dict()
    finally:
        torch.set_default_dtype(torch.float32)
    moved = 0
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-9, atol=1e-9, msg=name)
        moved += not torch.equal(a[name], initial[name])
    assert moved > 300  # the runs did train


def test_resume_after_a_kill_reaches_the_same_weights(tiny_camvid, tmp_path):
    steps = {"max_iter": 20, "checkpoint_every": 3}
    straight = write_config(tiny_config(tiny_camvid, tmp_path / "a", **steps), tmp_path / "a.yaml")
    killed = write_config(tiny_config(tiny_camvid, tmp_path / "b", **steps), tmp_path / "b.yaml")
    reference = bisenet_train(straight)

    victim = bisenet_train(killed)
    state = tmp_path / "b" / "last.pt"
    deadline = time.monotonic() + 240
    while not state.exists() and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    assert victim.returncode == -signal.SIGKILL
    reached = torch.load(state, weights_only=False)["iteration"]
    assert 0 < reached < 20, "the run should have been killed mid-way"
    assert not (tmp_path / "b" / "final.pt").exists()

    # what a kill in the middle of a save leaves (the kill above may or may not have)
    (tmp_path / "b" / ".partial-last.pt.x1y2z3").write_bytes(b"half a checkpoint")
    # an override right after --resume (argparse offers it to --resume as the path)
    finish(bisenet_train(killed, "--resume", "train.checkpoint_every=3"))
    assert not list((tmp_path / "b").glob(".partial-*")), "leftovers were not removed"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "b" / "last.pt").stat().st_mode) == 0o666 & ~umask
    finish(reference)
    a, b = model_state(tmp_path / "a" / "last.pt"), model_state(tmp_path / "b" / "last.pt")
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6, msg=name)
    assert torch.load(tmp_path / "b" / "last.pt", weights_only=False)["iteration"] == 20


def test_ctrl_c_saves_the_finished_steps_and_resume_continues_from_them(tiny_camvid, tmp_path):
    """Ctrl-C in a terminal reaches the whole process group, the DataLoader worker too; the
    run must still save its last whole step (no periodic save is due) and exit as a shell
    expects, with one line and no traceback."""
    steps = {"max_iter": 1000, "checkpoint_every": 1000, "log_every": 1, "num_workers": 1}
    config = write_config(tiny_config(tiny_camvid, tmp_path / "run", **steps), tmp_path / "c.yaml")
    run = bisenet_train(config, new_group=True)
    seen = ""
    while "iter 3 " not in seen and run.poll() is None:
        seen += run.stdout.readline()
    os.killpg(run.pid, signal.SIGINT)
    output = seen + run.communicate(timeout=120)[0]
    assert run.returncode == 130, output[-3000:]
    assert "Traceback" not in output and "exited unexpectedly" not in output, output[-3000:]
    reached = torch.load(tmp_path / "run" / "last.pt", weights_only=False)["iteration"]
    assert 3 <= reached < 1000
    assert f"bisenet train: stopped on request at iteration {reached};" in output
    assert not (tmp_path / "run" / "final.pt").exists()

    finish(bisenet_train(config, "--resume", f"train.max_iter={reached + 2}"))
    resumed = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert resumed["iteration"] == reached + 2
    assert (tmp_path / "run" / "final.pt").exists()


def test_a_bad_image_met_mid_run_keeps_the_finished_steps(tiny_camvid, tmp_path):
    """A truncated JPEG first drawn at iteration k, read by a DataLoader worker: one error
    line naming the file (not the worker's traceback), the k finished steps saved, and once
    the file is fixed --resume finishes the run."""
    from bisenet_ros.training.sampler import StreamBatchSampler

    root = tmp_path / "camvid"
    shutil.copytree(tiny_camvid, root, symlinks=True)
    images = sorted((root / "train" / "images").iterdir())
    first_drawn: dict[int, int] = {}
    for iteration, batch in enumerate(StreamBatchSampler(len(images), 2, 0, 0, 20)):
        for index, _ in batch:
            first_drawn.setdefault(index, iteration)
    bad, k = next((i, it) for i, it in sorted(first_drawn.items(), key=lambda x: x[1]) if it >= 2)
    good = images[bad].resolve()
    images[bad].unlink()
    images[bad].write_bytes(good.read_bytes()[:20000])

    steps = {"max_iter": 20, "checkpoint_every": 100, "num_workers": 1}
    config = write_config(tiny_config(root, tmp_path / "run", **steps), tmp_path / "c.yaml")
    run = bisenet_train(config)
    output = run.communicate(timeout=300)[0]
    assert run.returncode == 1, output[-3000:]
    (line,) = [x for x in output.splitlines() if "error:" in x]
    assert line.startswith(f"bisenet train: error: corrupt: {images[bad]}: 20000 bytes of JPEG")
    state = tmp_path / "run" / "last.pt"
    assert line.endswith(f"the state after iteration {k} is saved to {state}: fix it, then "
                         "continue with --resume"), line  # fmt: skip
    assert "Traceback" not in output, output[-3000:]
    assert torch.load(state, weights_only=False)["iteration"] == k

    images[bad].write_bytes(good.read_bytes())
    finish(bisenet_train(config, "--resume"))
    assert torch.load(state, weights_only=False)["iteration"] == 20


def test_resume_with_a_new_max_iter_follows_the_new_schedule(tiny_camvid, tmp_path):
    config = tiny_config(tiny_camvid, tmp_path, max_iter=3, checkpoint_every=3, warmup_iters=0)
    Trainer(load_config(write_config(config, tmp_path / "short.yaml"))).run()
    config["train"]["max_iter"] = 6
    longer = Trainer(
        load_config(write_config(config, tmp_path / "long.yaml")), tmp_path / "last.pt"
    )
    assert longer.iteration == 3
    assert [fn.max_iter for fn in longer.scheduler.lr_lambdas] == [6] * 4
    longer.step(*next(iter(longer._loader())))
    expected = 0.01 * (1 - 4 / 6) ** 0.9
    assert longer.optimizer.param_groups[0]["lr"] == pytest.approx(expected)


def test_fine_tuning_the_rugd_checkpoint_onto_camvid(tiny_camvid, rugd_dir, tmp_path):
    rugd = rugd_dir / "bisenetv2_rugd25_coincheung_fp16.pth"
    config = tiny_config(tiny_camvid, tmp_path, max_iter=2, eval_every=2)
    config["model"] = {"init": str(rugd), "freeze": ["detail"], "reinit_head": True}
    trainer = Trainer(load_config(write_config(config, tmp_path / "c.yaml")))
    source = {k: v.float() for k, v in torch.load(rugd, weights_only=True).items()}
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    for name, tensor in before.items():
        if name.startswith(("detail.", "segment.", "bga.")) and name in source:
            torch.testing.assert_close(tensor, source[name].to(tensor.dtype), msg=name)
    assert before["head.conv_out.1.weight"].shape[0] == 11
    for head in ("head", "aux2", "aux3", "aux4", "aux5_4"):
        assert before[f"{head}.conv_out.1.weight"].std() < 0.02, head  # explicit small re-init
    metrics = trainer.run()
    after = trainer.model.state_dict()
    detail = [k for k in after if k.startswith("detail.")]
    assert detail and all(torch.equal(after[k], before[k]) for k in detail)  # BN stats too
    moved = [k for k in after if k.startswith("segment.") and not torch.equal(after[k], before[k])]
    assert len(moved) > 50
    assert 0 <= metrics["miou"] <= 1

    model, manifest = load_checkpoint(tmp_path / "final.pt")
    assert manifest.class_names[3] == "road" and manifest.drivable_ids == [3]
    assert manifest.num_classes == 11 and manifest.input_size == (96, 128)
    assert (tmp_path / "best.pt").exists() and list(tmp_path.glob("eval_*.json"))


@pytest.mark.parametrize("name", ["camvid_bisenetv2.yaml", "camvid_finetune_rugd.yaml"])
def test_shipped_training_configs_are_valid(name):
    config = load_config(REPO / "config" / name)
    assert config["data"]["format"] == "camvid"


def test_bundled_model_is_a_small_fp16_camvid_model_with_road_drivable():
    path = REPO / "bisenet_ros" / "weights" / "bisenetv2_camvid.pt"
    assert path.stat().st_size < 8 * 1024 * 1024
    stored = torch.load(path, weights_only=True)
    assert {v.dtype for v in stored["state_dict"].values() if v.is_floating_point()} == {
        torch.float16
    }
    model, manifest = load_checkpoint(path)
    assert manifest.class_names[3] == "road" and manifest.drivable_ids == [3]
    assert manifest.num_classes == 11 and manifest.input_size == (360, 480)
    assert not any(name.startswith("aux") for name in model.state_dict())


def test_fine_tuning_from_other_classes_of_the_same_count_starts_the_classifiers_fresh(
    tmp_path, caplog
):
    """Three classes are not the same three classes: the classifiers of a checkpoint
    trained on road/car/sky are not reused for drivable/obstacle/background, and the log
    says so; with the same names they are kept."""
    from bisenet_ros.manifest import Manifest
    from bisenet_ros.models import build_model, save_checkpoint
    from bisenet_ros.training.trainer import create_model

    trained_on = Manifest.default("bisenetv2", 3).with_classes(["road", "car", "sky"])
    init = save_checkpoint(
        tmp_path / "init.pt", build_model("bisenetv2", 3), trained_on, half=False
    )
    config = load_config(None, [f"model.init={init}", "model.aux_heads=false"])
    kept = create_model(config, trained_on).state_dict()
    file_state = torch.load(init, weights_only=False)["state_dict"]
    classifier = next(k for k in kept if k.startswith("head.") and k.endswith("weight")
                      and kept[k].shape[0] == 3)  # fmt: skip
    assert torch.equal(kept[classifier], file_state[classifier])

    caplog.set_level("WARNING")
    renamed = trained_on.with_classes(["drivable", "obstacle", "background"])
    fresh = create_model(config, renamed).state_dict()
    assert not torch.equal(fresh[classifier], file_state[classifier])
    assert "trained on the classes ['road', 'car', 'sky']" in caplog.text
