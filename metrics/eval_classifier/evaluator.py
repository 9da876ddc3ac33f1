"""The ready evaluation classifier: loaded from the cache when it holds one for this data and recipe, else fitted
on the training split, scored on the real test images and cached."""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from metrics.eval_classifier import fit
from metrics.eval_classifier.cache import (
    CACHE_FORMAT,
    cache_key,
    default_cache_dir,
    infer_task,
    key_data,
    write_sidecar,
    write_state,
)
from metrics.eval_classifier.examples import check_task
from metrics.eval_classifier.model import build_classifier
from metrics.eval_classifier.recipe import Recipe
from metrics.eval_classifier.scoring import classifier_accuracy, evaluate_real_accuracy
from suite.errors import ConfigError

log = logging.getLogger("metrics.eval_classifier")
Loader = Iterable[Mapping[str, Any]]


def num_outputs_of(info: Mapping[str, Any], task: str) -> int:
    """Number of domains (task ``domain``) or attributes (``multilabel``) the datamodule info describes."""
    names, count = ("domain_names", "num_domains") if task == "domain" else ("attr_names", "num_attrs")
    if info.get(names):
        return len(info[names])
    if info.get(count):
        return int(info[count])
    raise ConfigError(
        f"the datamodule info has neither {names} nor {count}, which the task={task} evaluation classifier needs."
    )


def real_accuracy(
    model: nn.Module,
    test_loader_fn: Callable[[], Loader],
    task: str,
    info: Mapping[str, Any],
    use_ref: bool,
) -> dict[str, float]:
    """:func:`evaluate_real_accuracy` on the test split, with a warning when it is too close to chance."""
    attr_names = info.get("attr_names") if task == "multilabel" else None
    acc = evaluate_real_accuracy(
        model, test_loader_fn(), task, attr_names=list(attr_names) if attr_names else None, use_ref=use_ref
    )
    log.info("evaluation classifier real-test accuracy %.4f", acc["accuracy"])
    chance = 0.5 if task == "multilabel" else 1.0 / num_outputs_of(info, task)
    if acc["accuracy"] < chance + 0.5 * (1.0 - chance):
        warnings.warn(
            f"the evaluation classifier scores only {acc['accuracy']:.3f} on real test images (chance "
            f"{chance:.3f}), so accuracy_target says little; train it longer (evaluate's classifier.epochs) or "
            "use a stronger arch (classifier.arch=resnet18).",
            UserWarning,
            stacklevel=3,
        )
    return acc


@dataclass
class EvalClassifier:
    """A ready evaluation classifier and where it came from."""

    model: nn.Module
    task: str
    num_outputs: int
    key: str
    path: Path
    from_cache: bool
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def real_accuracy(self) -> float | None:
        """Accuracy on real test images recorded when it was trained (None when no test loader was given)."""
        acc = self.meta.get("real_accuracy")
        return None if acc is None else float(acc["accuracy"])

    def accuracy(self, images: Tensor, target: Tensor) -> Tensor:
        """:func:`classifier_accuracy` with this classifier's task."""
        return classifier_accuracy(self.model, images, target, self.task)


def _load_cached(path: Path, arch: str, num_outputs: int, image_size: Any) -> nn.Module | None:
    """The cached classifier at ``path``, or None (with a warning) when it cannot be loaded."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model = build_classifier(arch, num_outputs, image_size)
        model.load_state_dict(state)
    except Exception as exc:  # any unreadable cache (truncated, garbage, other arch) is handled alike
        warnings.warn(
            f"the cached evaluation classifier {path} could not be loaded ({type(exc).__name__}); retraining it.",
            UserWarning,
            stacklevel=3,
        )
        return None
    return model


def _read_sidecar(sidecar: Path) -> dict[str, Any]:
    try:
        return json.loads(sidecar.read_text())
    except (OSError, ValueError):
        log.warning("sidecar %s missing or unreadable; using the classifier without its metadata", sidecar)
        return {}


def get_or_train_eval_classifier(
    datamodule_info: Mapping[str, Any],
    train_loader_fn: Callable[[], Loader],
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    task: str | None = None,
    arch: str = "small",
    split: str = "train",
    device: str | torch.device = "cpu",
    test_loader_fn: Callable[[], Loader] | None = None,
    force_retrain: bool = False,
    recipe: Recipe | None = None,
    **settings: Any,
) -> EvalClassifier:
    """Load the cached evaluation classifier for this data and recipe, or train and cache it.

    datamodule_info: the datamodule's description — ``name`` (required), ``image_size`` (required), and
    ``domain_names`` / ``attr_names`` (or ``num_domains`` / ``num_attrs``); other ``KEY_FIELDS`` refine the
    key. train_loader_fn / test_loader_fn: called only when training is needed, so a cache hit costs no data
    loading. The fit follows ``recipe`` with ``settings`` (any :class:`Recipe` field: ``epochs``, ``steps``,
    ``lr``, …) on top. The file is ``<cache_dir>/evalclf-<key>.pt`` (state_dict, written atomically) with
    ``evalclf-<key>.json`` beside it (settings, data fields, real-test accuracy when test_loader_fn is given).
    A cache file that cannot be loaded is reported with a warning and replaced by a freshly trained one.
    ``use_ref`` (default: on for the two-domain view, whose ``image`` holds one domain only) also trains on
    the batches' labelled ``ref`` images.
    """
    task = task or infer_task(datamodule_info)
    check_task(task)
    num_outputs = num_outputs_of(datamodule_info, task)
    image_size = datamodule_info.get("image_size")
    if image_size is None:
        raise ConfigError("the datamodule info needs an 'image_size' to build the evaluation classifier.")
    recipe = Recipe.of(recipe, **settings)
    if recipe.use_ref is None:
        recipe = replace(recipe, use_ref=task == "domain" and datamodule_info.get("view") == "two_domain")
    key = cache_key(datamodule_info, split=split, arch=arch, task=task, settings=recipe.settings())
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    path = cache / f"evalclf-{key}.pt"
    sidecar = path.with_suffix(".json")
    device = torch.device(device)

    model = None if force_retrain or not path.exists() else _load_cached(path, arch, num_outputs, image_size)
    if model is not None:
        meta = _read_sidecar(sidecar)
        model = model.to(device).eval()
        if meta.get("real_accuracy") is None and test_loader_fn is not None:
            meta["real_accuracy"] = real_accuracy(model, test_loader_fn, task, datamodule_info, recipe.use_ref)
            write_sidecar(sidecar, meta)
        log.info("loaded evaluation classifier %s", path)
        return EvalClassifier(model, task, num_outputs, key, path, True, meta)

    log.info("training evaluation classifier %s (%s, %s, %d outputs)", key, arch, task, num_outputs)
    start = time.perf_counter()
    model = fit.train_eval_classifier(train_loader_fn(), num_outputs, task, arch, recipe, device,
                                      image_size=image_size)
    meta = {
        "key": key,
        "format": CACHE_FORMAT,
        "data": key_data(datamodule_info),
        "split": split,
        "arch": arch,
        "task": task,
        "num_outputs": num_outputs,
        "settings": recipe.settings(),
        "train_seconds": round(time.perf_counter() - start, 2),
        "torch": torch.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "real_accuracy": None,
    }
    if test_loader_fn is not None:
        meta["real_accuracy"] = real_accuracy(model, test_loader_fn, task, datamodule_info, recipe.use_ref)
    try:
        write_state(path, model)
        write_sidecar(sidecar, meta)
    except OSError as exc:
        warnings.warn(
            f"could not cache the evaluation classifier in {cache} ({exc}); set FACETRANS_CACHE to a writable folder.",
            UserWarning,
            stacklevel=2,
        )
    return EvalClassifier(model, task, num_outputs, key, path, False, meta)
