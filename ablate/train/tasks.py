"""Task kinds: what a run predicts, its loss, and what an evaluation measures.

``task`` is a config group (``conf/task/``): absent or ``classification`` (the default: one label
an image, label-smoothed cross-entropy, top-1/top-5) or ``segmentation`` (a label map an image,
a DeepLabV3 head on the backbone (``ablate.models.seg_head``), per-pixel cross-entropy that
skips ``ignore_index``, mIoU from a confusion matrix). ``fit`` takes the task object: the task
decides the loss, the evaluation and the metrics of each epoch's row; everything else (the loop,
checkpoints, resume, precision, several processes) is the classification run's.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn as nn

from ablate.errors import ConfigError

TASKS = ("classification", "segmentation")


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
                     ignore_index: Optional[int] = 255) -> torch.Tensor:
    """``num_classes`` x ``num_classes`` int64 counts, rows the true class, columns the predicted
    one, over every pixel whose target is not ``ignore_index``."""
    keep = target != ignore_index if ignore_index is not None else torch.ones_like(target, dtype=torch.bool)
    t, p = target[keep].to(torch.int64), pred[keep].to(torch.int64)
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= num_classes):
        bad = int(t.max()) if int(t.max()) >= num_classes else int(t.min())
        raise ValueError(f"label {bad} in a mask; allowed: 0..{num_classes - 1} or {ignore_index} (ignore)")
    return torch.bincount(t * num_classes + p, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def iou_from_confusion(cm: torch.Tensor | list) -> dict:
    """Per-class IoU = TP / (TP + FP + FN) in percent (None for a class absent from both targets
    and predictions), their mean over the classes that have one (mIoU), and pixel accuracy."""
    cm = torch.as_tensor(cm, dtype=torch.float64)
    tp = cm.diag()
    union = cm.sum(0) + cm.sum(1) - tp
    per_class = [None if u == 0 else 100.0 * float(t / u) for t, u in zip(tp, union)]
    present = [v for v in per_class if v is not None]
    total = float(cm.sum())
    return {"miou": sum(present) / len(present) if present else 0.0, "iou": per_class,
            "pixel_acc": 100.0 * float(tp.sum()) / total if total else 0.0}


@dataclass
class SegmentationTask:
    """Per-pixel classification into ``num_classes`` with ``ignore_index`` skipped (loss and mIoU)."""

    num_classes: int
    ignore_index: int = 255
    label_smoothing: float = 0.0

    name = "segmentation"

    def criterion(self) -> nn.Module:
        return nn.CrossEntropyLoss(ignore_index=self.ignore_index, label_smoothing=self.label_smoothing)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, loader, device: torch.device, precision: str = "fp32",
                 channels_last: bool = False, reduce: Optional[Callable[[list], list]] = None) -> dict:
        """mIoU, per-class IoU and pixel accuracy from one confusion matrix over the whole
        validation set (never a mean of per-batch mIoUs), and the mean per-pixel cross-entropy
        over scored pixels. ``reduce``: the sums of every rank (several processes)."""
        from ablate.train.engine import eval_batches

        k = self.num_classes
        cm = torch.zeros(k, k, dtype=torch.int64, device=device)
        losses = []
        for logits, y in eval_batches(model, loader, device, precision, channels_last):
            losses.append(nn.functional.cross_entropy(logits, y, ignore_index=self.ignore_index, reduction="sum"))
            cm += confusion_matrix(logits.argmax(1), y, k, self.ignore_index)
        loss_sum = sum(torch.stack(losses).tolist()) if losses else 0.0
        flat = cm.flatten().tolist()
        if reduce is not None:
            loss_sum, *flat = reduce([loss_sum, *flat])
        cm = torch.tensor(flat, dtype=torch.int64).reshape(k, k)
        scored = int(cm.sum())
        out = iou_from_confusion(cm)
        return {**out, "loss": loss_sum / max(scored, 1), "confusion": cm.tolist()}

    def row(self, val: dict) -> dict:
        """An epoch's metrics row entries (``metrics.jsonl``, W&B)."""
        return {"val_miou": val["miou"], "val_pixel_acc": val["pixel_acc"], "val_loss": val["loss"],
                **{f"val_iou_{i}": v for i, v in enumerate(val["iou"])}}

    def summary(self, val: dict) -> str:
        return f"val mIoU {val['miou']:.2f}%"

    @staticmethod
    def headline(row: dict) -> float:
        return row["val_miou"]


def check_task(task: Optional[dict]) -> dict:
    """The ``task`` group with its defaults (one line for a bad value); None is classification."""
    from ablate.models.seg_head import check_head

    task = dict(task or {"name": "classification"})
    name = task.get("name")
    if name not in TASKS:
        raise ConfigError(f"task.name={name!r}; allowed: {', '.join(TASKS)}")
    allowed = {"classification": {"name"},
               "segmentation": {"name", "ignore_index", "output_stride", "head_channels", "head_dropout", "head_rates"}}[name]
    for key in task:
        if key not in allowed:
            raise ConfigError(f"task.{key} is not an option of task {name!r}; allowed: {', '.join(sorted(allowed))}")
    if name == "segmentation":
        task.setdefault("ignore_index", 255)
        task.setdefault("output_stride", 16)
        task.setdefault("head_channels", 256)
        task.setdefault("head_dropout", 0.1)
        task.setdefault("head_rates", None)
        ig = task["ignore_index"]
        if isinstance(ig, bool) or not isinstance(ig, int) or not 0 <= ig <= 255:
            raise ConfigError(f"task.ignore_index={ig!r}; allowed: an integer in [0, 255] (Pascal VOC: 255)")
        check_head(task["output_stride"], task["head_channels"], task["head_dropout"], task["head_rates"])
    return task


def is_segmentation(config: dict) -> bool:
    """Does this resolved config train a segmentation task?"""
    return (config.get("task") or {}).get("name") == "segmentation"


def model_options(model: dict) -> dict:
    """The model group's options for the model factory (without ``name`` and the transfer keys)."""
    return {k: v for k, v in model.items() if k not in ("name", "init_from", "init_from_path")}


def build_model(name: str, options: dict, attention: dict, task: Optional[dict], *, num_classes: int,
                in_chans: int = 3):
    """The run's network: ``create_model`` (classification) or ``create_segmenter`` (segmentation)."""
    from ablate.models import create_model

    if task and task.get("name") == "segmentation":
        from ablate.models.seg_head import create_segmenter

        return create_segmenter(name, num_classes=num_classes, in_chans=in_chans, attention=attention,
                                output_stride=task["output_stride"], head_channels=task["head_channels"],
                                head_dropout=task["head_dropout"], head_rates=task.get("head_rates"),
                                **model_options(options))
    return create_model(name, num_classes=num_classes, in_chans=in_chans, attention=attention, **model_options(options))


def check_task_data(task: dict, data_name: str) -> None:
    """A segmentation task needs a dataset of label maps, classification one of labels."""
    from ablate.data.segmentation import SEGMENTATION_DATASETS

    seg = task["name"] == "segmentation"
    if seg and data_name not in SEGMENTATION_DATASETS:
        raise ConfigError(f"data={data_name!r} with task=segmentation; allowed: {', '.join(SEGMENTATION_DATASETS)}")
    if not seg and data_name in SEGMENTATION_DATASETS:
        raise ConfigError(f"data={data_name!r} holds label maps, with task={task['name']}; allowed: task=segmentation")
