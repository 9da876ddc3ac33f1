"""Examples for the evaluation classifier from the suite's batches: the real images, their labels, the loss and the
per-image verdict of each task (``domain``: one class; ``multilabel``: independent attributes)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from suite.errors import ConfigError, DatasetError

TASKS = ("domain", "multilabel")


def check_task(task: str) -> None:
    """A ConfigError unless ``task`` is one of ``TASKS``."""
    if task not in TASKS:
        raise ConfigError(f"unknown evaluation classifier task {task!r}; choose 'domain' or 'multilabel'.")


def batch_labels(batch: Mapping[str, Any], task: str, num_outputs: int, key: str | None = None) -> Tensor:
    """The batch's ``key`` labels (default ``domain`` / ``attrs`` by task), checked against ``num_outputs``."""
    key = key or ("domain" if task == "domain" else "attrs")
    if key not in batch:
        raise DatasetError(
            f"the batches carry no {key!r} labels, which the task={task} evaluation classifier needs; "
            f"use a datamodule view that provides them."
        )
    y = torch.as_tensor(batch[key])
    if task == "domain":
        y = y.long().view(-1)
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_outputs):
            raise DatasetError(
                f"domain labels must lie in 0..{num_outputs - 1}, found {int(y.min())}..{int(y.max())}; "
                f"check the datamodule's domain_names."
            )
        return y
    y = y.float()
    if y.dim() != 2 or y.shape[1] != num_outputs:
        raise DatasetError(
            f"attrs must be B×{num_outputs} for a {num_outputs}-attribute classifier, got {tuple(y.shape)}; "
            f"check the datamodule's attr_names."
        )
    return y


def example_images(batch: Mapping[str, Any], use_ref: bool) -> Tensor:
    """Real images of a batch: ``image`` and, with ``use_ref``, ``ref`` after it.

    The two-domain view puts only source-domain images in ``image`` and the other domain's in ``ref`` (with
    ``ref_domain``), so both are needed for a classifier to see every domain.
    """
    images = torch.as_tensor(batch["image"]).to(torch.float32)
    if not use_ref:
        return images
    if "ref" not in batch:
        raise DatasetError("use_ref is set but the batches carry no 'ref' images; turn use_ref off.")
    return torch.cat([images, torch.as_tensor(batch["ref"]).to(torch.float32)])


def example_labels(batch: Mapping[str, Any], task: str, num_outputs: int, use_ref: bool) -> Tensor:
    """Labels matching :func:`example_images`."""
    labels = batch_labels(batch, task, num_outputs)
    if not use_ref:
        return labels
    ref_key = "ref_domain" if task == "domain" else "ref_attrs"
    return torch.cat([labels, batch_labels(batch, task, num_outputs, ref_key)])


def loss(logits: Tensor, y: Tensor, task: str) -> Tensor:
    """Cross-entropy (domain) or per-attribute BCE (multilabel)."""
    return F.cross_entropy(logits, y) if task == "domain" else F.binary_cross_entropy_with_logits(logits, y)


def correct(logits: Tensor, target: Tensor, task: str) -> Tensor:
    """Per-image (domain: B) or per-decision (multilabel: B×n) correctness as floats in {0, 1}."""
    if task == "domain":
        return (logits.argmax(dim=1) == target.to(logits.device).long().view(-1)).float()
    return ((logits > 0) == (target.to(logits.device) > 0.5)).float()
