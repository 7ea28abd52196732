"""The training loop: one process or a torchrun job, resumable to the same weights.

Files in ``train.out_dir``:
  ``last.pt``   full training state (model, optimizer, scheduler, scaler, RNG, iteration,
                manifest, config), written atomically every ``checkpoint_every`` iterations;
  ``best.pt``   the model with the best validation mIoU so far (project format);
  ``final.pt``  the model after the last iteration (project format, fp16);
  ``tb/``       TensorBoard logs; ``eval_<iter>.json`` periodic evaluation results.
"""

from __future__ import annotations

import copy
import logging
import math
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..atomic import remove_leftovers
from ..manifest import Manifest
from ..models import build_model, load_checkpoint, save_checkpoint
from ..models.checkpoint import (
    NUMPY_ARRAY_GLOBALS,
    STATE_FORMAT,
    atomic_torch_save,
    read_checkpoint,
    safe_torch_load,
    small_classifiers,
)
from . import distributed
from .class_map import ClassTable
from .config import ConfigError
from .evaluation import evaluate
from .formats import build_dataset
from .losses import BoosterLoss, OhemCrossEntropy
from .optim import build_optimizer
from .sampler import StreamBatchSampler
from .transforms import EvalTransform, TrainAugment

log = logging.getLogger(__name__)


class Interrupted(Exception):
    """Training stopped on request after a whole step; its state is saved for ``--resume``."""


class DataError(ValueError):
    """The data loader failed mid-run (a bad image or label, a worker that died); the
    finished steps are saved for ``--resume``."""


def _loader_problem(error: Exception) -> str:
    """The one-line cause of a data loader failure. A DataLoader worker's exception reaches
    the main process with the worker's whole traceback as its message, whose last line is
    'module.Type: message'."""
    text = str(error)
    lines = [line for line in text.splitlines() if line.strip()] or [type(error).__name__]
    return lines[-1].split(": ", 1)[-1] if "Original Traceback" in text else lines[0]


def make_manifest(config: dict, classes: ClassTable) -> Manifest:
    """The manifest of the trained model: the dataset's classes, the data's normalisation."""
    data, model = config["data"], config["model"]
    return Manifest(
        arch=model["arch"],
        class_names=classes.names,
        palette=classes.palette,
        input_size=tuple(data["input_size"]),
        mean=tuple(data["mean"]),
        std=tuple(data["std"]),
        channel_order="rgb",
        drivable_ids=classes.drivable_ids,
        variant=model["variant"],
        description=f"trained by bisenet train on {data['format']} {data['train_split']}",
    )


def create_model(config: dict, manifest: Manifest) -> nn.Module:
    """A new network, or one initialised from ``model.init`` for fine-tuning."""
    cfg = config["model"]
    if cfg["init"]:
        model, _ = load_checkpoint(
            cfg["init"], num_classes=manifest.num_classes, aux_heads=cfg["aux_heads"],
            manifest=manifest,
        )  # fmt: skip
        if cfg["reinit_head"] or other_classes(cfg["init"], manifest):
            log.info("re-initialised classifiers: %s", small_classifiers(model))
    else:
        model = build_model(cfg["arch"], manifest.num_classes, cfg["aux_heads"], cfg["variant"])
    if cfg["dropout"] is not None:
        for module in model.modules():
            if isinstance(module, nn.Dropout):
                module.p = float(cfg["dropout"])
    for prefix in cfg["freeze"]:
        frozen = [p for n, p in model.named_parameters() if n.startswith(f"{prefix}.")]
        if not frozen:
            raise ValueError(f"model.freeze: no parameters start with {prefix!r}")
        for param in frozen:
            param.requires_grad_(False)
    return model


def other_classes(init: str, manifest: Manifest) -> bool:
    """Whether the ``init`` checkpoint was trained on other classes than the dataset's, with
    as many of them: its classifiers would then be reused for the wrong classes, so they
    start fresh; a logged line names both tables. Classes are compared by name, in order."""
    stored = read_checkpoint(init)[3]
    if stored is None or stored.num_classes != manifest.num_classes:
        return False  # no names to compare, or a new class count re-initialises anyway
    if stored.class_names == manifest.class_names:
        return False
    log.warning(
        "%s was trained on the classes %s, the dataset has %s: its classifiers are not reused",
        init, stored.class_names, manifest.class_names,
    )  # fmt: skip
    return True


def train_mode(model: nn.Module, frozen: list[str]) -> None:
    """Training mode, except frozen branches: their BatchNorms keep the pretrained statistics."""
    model.train()
    for name, module in model.named_modules():
        if any(name == p or name.startswith(f"{p}.") for p in frozen):
            module.eval()


def without_aux_heads(model: nn.Module, manifest: Manifest) -> nn.Module:
    """The inference network: the same weights minus the training-only auxiliary heads."""
    if not getattr(model, "aux_names", None):
        return model
    plain = build_model(
        manifest.arch, manifest.num_classes, aux_heads=False, variant=manifest.variant
    )
    state = {k: v for k, v in model.state_dict().items() if k in plain.state_dict()}
    plain.load_state_dict(state, strict=True)
    return plain.eval()


def rng_state() -> dict:
    state = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(legacy=False),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    # fixed crop sizes: cuDNN may time its algorithms once and keep the fastest
    torch.backends.cudnn.benchmark = not deterministic


class Trainer:
    """Builds everything from a config and runs (or resumes) the training loop."""

    def __init__(self, config: dict, resume: str | Path | None = None) -> None:
        self.config = config
        self.ctx = distributed.setup()
        data, train, aug = config["data"], config["train"], config["augment"]
        if train["threads"]:
            torch.set_num_threads(int(train["threads"]))
        seed_everything(train["seed"], train["deterministic"])
        self.out_dir = Path(train["out_dir"])
        if self.ctx.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            for leftover in remove_leftovers(self.out_dir):
                log.info("removed %s, left by a save that was killed", leftover.name)

        augment = TrainAugment(
            crop_size=tuple(aug["crop_size"]),
            scale_range=tuple(aug["scale_range"]),
            mean=tuple(data["mean"]),
            std=tuple(data["std"]),
            hflip=aug["hflip"],
            brightness=aug["brightness"],
            contrast=aug["contrast"],
            saturation=aug["saturation"],
        )
        self.train_set = build_dataset(
            data["format"], data["root"], data["train_split"], augment, data["classes"]
        )
        self.val_set = None
        if data["val_split"] and train["eval_every"]:
            self.val_set = build_dataset(
                data["format"], data["root"], data["val_split"],
                EvalTransform(tuple(data["mean"]), tuple(data["std"]), tuple(data["input_size"])),
                data["classes"],
            )  # fmt: skip
        self.manifest = make_manifest(config, self.train_set.classes)

        model = create_model(config, self.manifest)
        if config["model"]["sync_bn"] and self.ctx.distributed:
            model = distributed.convert_sync_batchnorm(model, self.ctx.device)
        self.channels_last = bool(train["channels_last"])
        if self.channels_last:  # about 30% faster convolutions on CPUs and tensor cores
            model = model.to(memory_format=torch.channels_last)
        self.model = model.to(self.ctx.device).train()
        self.dtype = next(model.parameters()).dtype  # float32, unless built otherwise
        if self.ctx.distributed:
            device_ids = [self.ctx.local_rank] if self.ctx.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(self.model, device_ids=device_ids)

        loss_cfg = config["loss"]
        weights = loss_cfg["class_weights"]
        if weights is not None and len(weights) != self.manifest.num_classes:
            raise ConfigError(
                f"loss.class_weights lists {len(weights)} weights for the dataset's "
                f"{self.manifest.num_classes} classes ({', '.join(self.manifest.class_names)})"
            )
        criterion = OhemCrossEntropy(
            loss_cfg["ohem_thresh"], loss_cfg["min_kept_ratio"], loss_cfg["class_weights"]
        )
        self.criterion = BoosterLoss(criterion, loss_cfg["aux_weights"]).to(self.ctx.device)
        self.optimizer, self.scheduler = build_optimizer(distributed.unwrap(self.model), train)
        self.amp = bool(train["amp"]) and self.ctx.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.iteration = 0
        self.best_miou = -math.inf
        if resume:
            self._load_state(Path(resume))

    # --- checkpoints --------------------------------------------------------------------

    def _save_state(self) -> Path:
        path = self.out_dir / "last.pt"
        state = {
            "format": STATE_FORMAT,
            "iteration": self.iteration,
            "model": distributed.unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng_state(),
            "best_miou": self.best_miou,
            "manifest": self.manifest.to_dict(),
            "config": self.config,
        }
        atomic_torch_save(state, path)
        return path

    def _load_state(self, path: Path) -> None:
        if not path.is_file():
            raise FileNotFoundError(f"--resume: no training state at {path}")
        # numpy's RNG state is the one non-tensor the file holds; nothing else is loaded
        state = safe_torch_load(path, allow=NUMPY_ARRAY_GLOBALS)
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ValueError(f"{path} is not a training state written by bisenet train")
        distributed.unwrap(self.model).load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        # The schedule's shape comes from the config, not the file: an unchanged config
        # continues exactly, a new train.max_iter extends or shortens the run.
        # (LambdaLR.load_state_dict overwrites the schedule objects' fields in place.)
        schedule = [copy.deepcopy(fn) for fn in self.scheduler.lr_lambdas]
        self.scheduler.load_state_dict(state["scheduler"])
        self.scheduler.lr_lambdas = schedule
        self.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        self.iteration = state["iteration"]
        self.best_miou = state["best_miou"]
        log.info("resumed from %s at iteration %d", path, self.iteration)

    # --- the loop -----------------------------------------------------------------------

    def _loader(self) -> DataLoader:
        train = self.config["train"]
        sampler = StreamBatchSampler(
            len(self.train_set), train["batch_size"], train["seed"], self.iteration,
            train["max_iter"], self.ctx.rank, self.ctx.world_size,
        )  # fmt: skip
        # Own generator: creating the loader must not consume the global RNG (exact resume).
        return DataLoader(
            self.train_set,
            batch_sampler=sampler,
            num_workers=train["num_workers"],
            pin_memory=self.ctx.device.type == "cuda",
            persistent_workers=False,
            generator=torch.Generator().manual_seed(train["seed"]),
        )

    def _batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The loader's batches; if it fails mid-run, the finished steps are saved first."""
        batches, start = iter(self._loader()), self.iteration
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except Exception as error:
                problem = _loader_problem(error)
                if self.iteration > start and self.ctx.is_main:
                    state = self._save_state()
                    problem += (
                        f"; the state after iteration {self.iteration} is saved to {state}: "
                        "fix it, then continue with --resume"
                    )
                raise DataError(problem) from error
            yield batch

    def step(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        """One optimisation step; returns the loss."""
        train_mode(distributed.unwrap(self.model), self.config["model"]["freeze"])
        images = images.to(self.ctx.device, self.dtype, non_blocking=True)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        labels = labels.to(self.ctx.device, non_blocking=True)
        with torch.autocast(self.ctx.device.type, enabled=self.amp):
            loss = self.criterion(self.model(images), labels)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"loss is {loss.item()} at iteration {self.iteration}; check the labels with "
                "`bisenet check-dataset` and lower train.lr"
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.config["train"]["grad_clip"]:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config["train"]["grad_clip"])
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.iteration += 1
        return float(loss.detach())

    def run(self, stop: threading.Event | None = None) -> dict:
        """Train to ``max_iter``; returns the last evaluation's metrics (may be empty).

        Once ``stop`` is set (in any process of the job), the step under way finishes, the
        training state is saved and ``Interrupted`` is raised."""
        train = self.config["train"]
        writer = self._writer()
        bar = tqdm(
            total=train["max_iter"], initial=self.iteration, desc="train", unit="it",
            disable=not (train["progress"] and self.ctx.is_main), dynamic_ncols=True,
        )  # fmt: skip
        metrics: dict = {}
        stopped = False
        tic, done = time.perf_counter(), 0
        for images, labels in self._batches():
            loss = self.step(images, labels)
            done += 1
            lr = self.optimizer.param_groups[0]["lr"]
            speed = done * images.shape[0] * self.ctx.world_size / (time.perf_counter() - tic)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.4g}", img_s=f"{speed:.1f}")
            if writer and self.iteration % train["log_every"] == 0:
                writer.add_scalar("train/loss", loss, self.iteration)
                writer.add_scalar("train/lr", lr, self.iteration)
                writer.add_scalar("train/images_per_s", speed, self.iteration)
                log.info("iter %d loss %.4f lr %.5f %.1f img/s", self.iteration, loss, lr, speed)
            last = self.iteration == train["max_iter"]
            if train["eval_every"] and (self.iteration % train["eval_every"] == 0 or last):
                metrics = self._evaluate(writer) or metrics
            stopped = stop is not None and distributed.any_process(stop.is_set()) and not last
            periodic = self.iteration % train["checkpoint_every"] == 0 or last
            if self.ctx.is_main and (periodic or stopped):
                self._save_state()
            if stopped:
                break
        bar.close()
        if writer:
            writer.close()
        if stopped:
            distributed.barrier()
            state = self.out_dir / "last.pt"
            raise Interrupted(
                f"stopped on request at iteration {self.iteration}; state saved to {state}"
            )
        if self.ctx.is_main:
            model = without_aux_heads(distributed.unwrap(self.model), self.manifest)
            final = save_checkpoint(
                self.out_dir / "final.pt", model, self.manifest,
                half=True, extra={"iteration": self.iteration},
            )  # fmt: skip
            log.info("wrote %s", final)
        distributed.barrier()
        return metrics

    def _writer(self):
        if not self.ctx.is_main:
            return None
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(str(self.out_dir / "tb"), purge_step=self.iteration or None)

    def _evaluate(self, writer) -> dict | None:
        """Validation on the main process; keeps ``best.pt`` by mIoU."""
        if self.val_set is None:
            return None
        if self.ctx.is_main:
            model = distributed.unwrap(self.model)
            result = evaluate(
                model, self.val_set, self.manifest.num_classes, self.manifest.class_names,
                self.ctx.device, scales=tuple(self.config["eval"]["scales"]),
                flip=self.config["eval"]["flip"], progress=self.config["train"]["progress"],
            )  # fmt: skip
            miou = result.metrics["miou"]
            result.to_json(self.out_dir / f"eval_{self.iteration:06d}.json")
            log.info("iter %d val mIoU %.2f", self.iteration, 100 * miou)
            if writer:
                writer.add_scalar("val/miou", miou, self.iteration)
                writer.add_scalar("val/pixel_acc", result.metrics["pixel_acc"], self.iteration)
            if miou > self.best_miou:
                self.best_miou = miou
                save_checkpoint(
                    self.out_dir / "best.pt", without_aux_heads(model, self.manifest),
                    self.manifest, half=False,
                    extra={"iteration": self.iteration, "val_miou": miou},
                )  # fmt: skip
        distributed.barrier()
        return result.metrics if self.ctx.is_main else None


def train(
    config: dict, resume: str | Path | None = None, stop: threading.Event | None = None
) -> dict:
    """Train as configured (joining a torchrun job if launched by one); see ``Trainer.run``."""
    trainer = Trainer(config, resume)
    try:
        return trainer.run(stop)
    finally:
        distributed.teardown()
