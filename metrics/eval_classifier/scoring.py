"""Scoring with a fitted evaluation classifier: per-image verdicts on translations, accuracy on real test images."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from metrics.eval_classifier.examples import check_task, correct, example_images, example_labels
from metrics.eval_classifier.model import device_of
from metrics.streaming import MetricBook
from suite.errors import DatasetError


@torch.no_grad()
def classifier_accuracy(model: nn.Module, images: Tensor, target: Tensor, task: str = "domain") -> Tensor:
    """Per-image correctness of the classifier's verdict on (translated) images.

    images: B×3×H×W in [-1, 1]. task ``"domain"``: target is B domain indices → B floats in {0, 1}
    (1 where the predicted domain is the target). task ``"multilabel"``: target is B×n target attributes in
    {0, 1} → B×n floats (1 where the predicted attribute agrees). Result on the model's device. The model
    should be in eval mode (as returned by the training and loading functions).
    """
    check_task(task)
    logits = model(images.to(device_of(model), torch.float32))
    return correct(logits, torch.as_tensor(target), task)


@torch.no_grad()
def evaluate_real_accuracy(
    model: nn.Module,
    test_loader: Iterable[Mapping[str, Any]],
    task: str = "domain",
    attr_names: Sequence[str] | None = None,
    max_batches: int | None = None,
    use_ref: bool = False,
) -> dict[str, float]:
    """Accuracy of the classifier on real test images (the papers' "Real" row).

    Labels are the images' own ``domain`` / ``attrs``. Returns ``{"accuracy": overall, "n": images}`` and,
    for multilabel, ``"accuracy/<attr>"`` per attribute (names from ``attr_names``, else indices); overall
    multilabel accuracy is the mean over all image×attribute decisions. ``use_ref`` also scores the
    batches' labelled ``ref`` images (the two-domain view's test ``image`` holds the source domain only).
    """
    check_task(task)
    was_training = model.training
    model.eval()
    book = MetricBook()
    n_images = 0
    for i, batch in enumerate(test_loader):
        if max_batches is not None and i >= max_batches:
            break
        images = example_images(batch, use_ref)
        logits = model(images.to(device_of(model)))
        y = example_labels(batch, task, logits.shape[1], use_ref)
        book.add("accuracy", correct(logits, y, task), columns=attr_names if task == "multilabel" else None)
        n_images += images.shape[0]
    model.train(was_training)
    if n_images == 0:
        raise DatasetError("the test loader yielded no batches; the real-image accuracy needs test images.")
    out = book.means()
    out["n"] = float(n_images)
    return out
