"""Confusion matrix, IoU and mIoU as the official Cityscapes evaluation defines them.

cityscapesscripts ignores pixels whose ground truth is void, computes each class's IoU as
TP / (TP + FP + FN), gives NaN to a class that appears in neither ground truth nor
prediction, and averages over the classes that are not NaN. The same here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from .datasets import IGNORE


def confusion_matrix(
    labels: np.ndarray | torch.Tensor, preds: np.ndarray | torch.Tensor, num_classes: int
) -> np.ndarray:
    """(C, C) int64 counts: rows are ground truth, columns are predictions; 255 skipped."""
    labels = torch.as_tensor(labels).flatten().long()
    preds = torch.as_tensor(preds).flatten().long()
    valid = labels != IGNORE
    if valid.any() and int(labels[valid].max()) >= num_classes:
        raise ValueError(f"ground truth holds class ids >= {num_classes}")
    index = labels[valid] * num_classes + preds[valid]
    counts = torch.bincount(index, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).cpu().numpy().astype(np.int64)


def scores(hist: np.ndarray, class_names: list[str] | None = None) -> dict:
    """Per-class IoU (NaN where a class is absent from both), mIoU, pixel accuracy."""
    hist = np.asarray(hist, dtype=np.float64)
    tp = np.diag(hist)
    union = hist.sum(0) + hist.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        class_acc = np.where(hist.sum(1) > 0, tp / hist.sum(1), np.nan)
    names = class_names or [str(i) for i in range(len(tp))]
    total = hist.sum()
    return {
        "miou": float(np.nanmean(iou)) if not np.isnan(iou).all() else float("nan"),
        "pixel_acc": float(tp.sum() / total) if total else float("nan"),
        "mean_class_acc": float(np.nanmean(class_acc))
        if not np.isnan(class_acc).all()
        else float("nan"),
        "iou": {n: (None if np.isnan(v) else float(v)) for n, v in zip(names, iou, strict=True)},
        "pixels": int(total),
    }


@torch.no_grad()
def predict_probs(
    model: nn.Module,
    images: torch.Tensor,
    out_size: tuple[int, int],
    scales: tuple[float, ...] = (1.0,),
    flip: bool = False,
) -> torch.Tensor:
    """Softmax probabilities at ``out_size``, averaged over scales (and flips)."""
    h, w = images.shape[-2:]
    total = None
    for scale in scales:
        size = (max(32, round(h * scale)), max(32, round(w * scale)))
        x = images if size == (h, w) else F.interpolate(images, size, mode="bilinear")
        views = [(x, False), (torch.flip(x, dims=[3]), True)] if flip else [(x, False)]
        for view, flipped in views:
            logits = model(view)
            if flipped:
                logits = torch.flip(logits, dims=[3])
            logits = F.interpolate(logits.float(), out_size, mode="bilinear", align_corners=False)
            probs = logits.softmax(1)
            total = probs if total is None else total + probs
    return total


@dataclass
class EvalResult:
    hist: np.ndarray
    metrics: dict

    def to_json(self, path: str | Path, extra: dict | None = None) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {**self.metrics, "confusion_matrix": self.hist.tolist(), **(extra or {})}
        path.write_text(json.dumps(payload, indent=2))
        return path


def evaluate(
    model: nn.Module,
    dataset: Dataset,
    num_classes: int,
    class_names: list[str] | None = None,
    device: torch.device | str = "cpu",
    scales: tuple[float, ...] = (1.0,),
    flip: bool = False,
    batch_size: int = 1,
    num_workers: int = 0,
    progress: bool = True,
) -> EvalResult:
    """Run ``model`` (eval mode) over ``dataset`` of (image tensor, label tensor) pairs."""
    was_training = model.training
    model.eval()
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, shuffle=False)
    hist = np.zeros((num_classes, num_classes), np.int64)
    bar = tqdm(loader, desc="evaluate", unit="batch", disable=not progress, dynamic_ncols=True)
    for images, labels in bar:
        probs = predict_probs(model, images.to(device), labels.shape[-2:], tuple(scales), flip)
        hist += confusion_matrix(labels, probs.argmax(1).cpu(), num_classes)
        bar.set_postfix(miou=f"{100 * scores(hist)['miou']:.2f}")
    model.train(was_training)
    return EvalResult(hist, scores(hist, class_names))
