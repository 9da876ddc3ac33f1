"""The evaluation classifier behind ``accuracy_target``: is a translated image recognised as its target?

The papers judge a translation by a classifier trained on *real* images of the training split: the fraction
of translated images it assigns to the target domain (or, for attributes, the per-attribute agreement with
the target attribute vector). Its accuracy on real test images (the tables' "Real" row) is the ceiling any
method can reach and is reported next to it.

No pretrained weights are needed: the classifier is trained here on first use and cached as a state_dict in
``<cache_dir>/evalclf-<key>.pt`` (plus a JSON sidecar with its settings and real-test accuracy). The key
hashes everything that defines the classifier — dataset name, image size, domain/attribute names, split,
architecture and training settings — so a change to any of them trains a new one. The classifier reads the
suite's images as they come, B×3×H×W in [-1, 1].
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metrics.streaming import MetricBook
from suite.errors import ConfigError, DatasetError

__all__ = [
    "ARCHS",
    "CACHE_FORMAT",
    "TASKS",
    "EvalClassifier",
    "build_classifier",
    "cache_key",
    "classifier_accuracy",
    "default_cache_dir",
    "evaluate_real_accuracy",
    "get_or_train_eval_classifier",
    "train_eval_classifier",
]

log = logging.getLogger(__name__)

ARCHS = ("small", "resnet18")
TASKS = ("domain", "multilabel")
CACHE_FORMAT = 1  # bump when the architectures or the training recipe change, so old caches are not reused
DEFAULT_EPOCHS = 10
# Linear LR warm-up: at 3e-3 from the first step the small CNN never left chance on squares vs circles.
DEFAULT_WARMUP_STEPS = 100
DEFAULT_SHIFT = 0.0  # random translation (fraction of the side); off: within a short budget it cost accuracy
# Fields of the datamodule's info that define what the classifier learns; anything else (batch size,
# workers, …) must not change the key.
KEY_FIELDS = (
    "name",
    "dataset",
    "root",
    "image_size",
    "domain_names",
    "attr_names",
    "num_domains",
    "num_attrs",
    "view",
    "task",
    "split_seed",
    "fingerprint",
    "version",
)


# ---------------------------------------------------------------------------------------------- networks
def _conv_bn_relu(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(True),
    ]


class SmallClassifier(nn.Module):
    """A compact CNN for 32–128 px: six conv-BN-ReLU layers, a 4×4 pooled map, a linear head.

    Widths w/2, w, w, 2w, 2w, 4w; layers 2, 4 and 6 halve the resolution, and so does the stem from 64 px up
    (``first_stride=2``) — below it keeps full resolution, since a 32 px face's mouth and brows are only a
    few pixels. The 4×4 map (rather than global pooling) keeps the coarse layout, which matters for faces
    (where the mouth is) and for position-defined classes. x: B×3×H×W in [-1, 1] → logits B×num_outputs.
    """

    def __init__(self, num_outputs: int, width: int = 32, first_stride: int = 2) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            *_conv_bn_relu(3, w // 2, first_stride),
            *_conv_bn_relu(w // 2, w, 2),
            *_conv_bn_relu(w, w, 1),
            *_conv_bn_relu(w, 2 * w, 2),
            *_conv_bn_relu(2 * w, 2 * w, 1),
            *_conv_bn_relu(2 * w, 4 * w, 2),
        )
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * w * 16, num_outputs))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.pool(self.features(x)))


def build_classifier(arch: str, num_outputs: int, image_size: int | Sequence[int]) -> nn.Module:
    """Build an untrained evaluation classifier.

    arch: ``"small"`` (:class:`SmallClassifier`, fast on a CPU, for the embedded data) or ``"resnet18"``
    (torchvision's, ``weights=None``, with a 3×3 stride-1 stem and no max-pool at ≤ 64 px, for real data).
    num_outputs: number of domains (softmax) or attributes (independent sigmoids). image_size: side (or H, W).
    """
    if num_outputs < 1:
        raise ConfigError(
            f"the evaluation classifier needs at least one output, got num_outputs={num_outputs}."
        )
    size = max(image_size) if isinstance(image_size, Sequence) else int(image_size)
    if arch == "small":
        return SmallClassifier(num_outputs, first_stride=1 if size < 64 else 2)
    if arch == "resnet18":
        from torchvision.models import resnet18

        model = resnet18(weights=None, num_classes=num_outputs)
        if size <= 64:
            # The ImageNet stem divides a 32 px face down to 1×1 before the last stage; use the CIFAR stem.
            model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
            model.maxpool = nn.Identity()
        return model
    raise ConfigError(f"unknown evaluation classifier arch {arch!r}; choose one of {', '.join(ARCHS)}.")


# ---------------------------------------------------------------------------------------------- helpers
def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ConfigError(f"unknown evaluation classifier task {task!r}; choose 'domain' or 'multilabel'.")


def _labels(batch: Mapping[str, Any], task: str, num_outputs: int, key: str | None = None) -> Tensor:
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


def _example_images(batch: Mapping[str, Any], use_ref: bool) -> Tensor:
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


def _example_labels(batch: Mapping[str, Any], task: str, num_outputs: int, use_ref: bool) -> Tensor:
    """Labels matching :func:`_example_images`."""
    labels = _labels(batch, task, num_outputs)
    if not use_ref:
        return labels
    ref_key = "ref_domain" if task == "domain" else "ref_attrs"
    return torch.cat([labels, _labels(batch, task, num_outputs, ref_key)])


def _loss(logits: Tensor, y: Tensor, task: str) -> Tensor:
    return F.cross_entropy(logits, y) if task == "domain" else F.binary_cross_entropy_with_logits(logits, y)


def _correct(logits: Tensor, target: Tensor, task: str) -> Tensor:
    if task == "domain":
        return (logits.argmax(dim=1) == target.to(logits.device).long().view(-1)).float()
    return ((logits > 0) == (target.to(logits.device) > 0.5)).float()


def _device_of(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


# ---------------------------------------------------------------------------------------------- training
def _warmup_cosine(warmup_steps: int, total: float | None) -> Callable[[int], float]:
    """LR factor: linear warm-up over ``warmup_steps`` (at most a fifth of ``total``), then cosine decay to 0 at ``total`` (flat if unknown)."""

    if total is not None and math.isfinite(total):
        warmup_steps = min(warmup_steps, int(total) // 5)  # a short run keeps most of its steps at full rate
    warmup_steps = max(warmup_steps, 1)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if total is None or not math.isfinite(total):
            return 1.0
        span = max(total - warmup_steps, 1)
        return 0.5 * (1 + math.cos(math.pi * min(step - warmup_steps, span) / span))

    return factor


def _augment(images: Tensor, shift: float, hflip: bool) -> Tensor:
    """Random per-image translation by up to ``shift`` of the side, and optional horizontal flips.

    Shifts are whole pixels with the border repeated: a sub-pixel (interpolated) shift would blur away the
    few-pixel details (a mouth corner, a brow) that tell expressions apart at 32 px.
    """
    b, c, h, w = images.shape
    dev = images.device
    if shift > 0:
        max_y, max_x = round(shift * h), round(shift * w)
        dy = torch.randint(-max_y, max_y + 1, (b, 1), device=dev)
        dx = torch.randint(-max_x, max_x + 1, (b, 1), device=dev)
        rows = (torch.arange(h, device=dev) + dy).clamp(0, h - 1)  # B×H
        cols = (torch.arange(w, device=dev) + dx).clamp(0, w - 1)  # B×W
        batch = torch.arange(b, device=dev).view(b, 1, 1, 1)
        chans = torch.arange(c, device=dev).view(1, c, 1, 1)
        images = images[batch, chans, rows.view(b, 1, h, 1), cols.view(b, 1, 1, w)]
    if hflip:
        flip = torch.rand(b, device=dev) < 0.5
        images = torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)
    return images


def train_eval_classifier(
    train_loader: Iterable[Mapping[str, Any]],
    num_outputs: int,
    task: str = "domain",
    arch: str = "small",
    epochs: int | None = None,
    steps: int | None = None,
    lr: float = 3e-3,
    device: str | torch.device = "cpu",
    *,
    image_size: int | Sequence[int] | None = None,
    weight_decay: float = 1e-4,
    shift: float = DEFAULT_SHIFT,
    hflip: bool = False,
    seed: int = 0,
    use_ref: bool = False,
    preload_mb: float = 1024.0,
    warmup_steps: int = DEFAULT_WARMUP_STEPS,
) -> nn.Module:
    """Train an evaluation classifier on real images and return it in eval mode on ``device``.

    train_loader: batches with ``image`` (B×3×H×W in [-1, 1]) and ``domain`` (B int, task ``"domain"``,
    cross-entropy) or ``attrs`` (B×n in {0, 1}, task ``"multilabel"``, BCE). ``use_ref`` adds each batch's
    ``ref`` images with their ``ref_domain`` / ``ref_attrs`` labels: the two-domain view needs it, since its
    ``image`` holds the source domain only. Training runs ``epochs`` passes
    (``DEFAULT_EPOCHS`` when neither ``epochs`` nor ``steps`` is given) and stops early after ``steps``
    optimizer steps. Adam with a linear warm-up over ``warmup_steps``, then cosine decay. Augmentation: each image is translated at random by up to
    ``shift`` of its side (border pixels repeat; 0 turns it off), and ``hflip`` adds random horizontal flips
    (only for left/right-symmetric labels).

    When the first pass's images and labels fit in ``preload_mb`` MiB they are kept in memory and later
    epochs reshuffle them there instead of iterating the loader again (a datamodule may render or decode
    much more per batch than the classifier needs); 0 turns this off. The global RNG is forked and seeded,
    so results are reproducible and the caller's RNG is untouched.
    """
    _check_task(task)
    if epochs is None and steps is None:
        epochs = DEFAULT_EPOCHS
    if (epochs is not None and epochs < 1) or (steps is not None and steps < 1):
        raise ConfigError(
            f"evaluation classifier epochs and steps must be positive, got epochs={epochs}, steps={steps}."
        )
    device = torch.device(device)

    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        model: nn.Module | None = None
        if image_size is not None:
            model = build_classifier(arch, num_outputs, image_size).to(device)
        try:
            per_epoch = len(train_loader)  # type: ignore[arg-type]
        except TypeError:
            per_epoch = None
        total = steps if per_epoch is None else min(steps or math.inf, (epochs or math.inf) * per_epoch)
        opt = sched = None
        memory: tuple[Tensor, Tensor] | None = None  # the whole training set, once it has been seen
        store: list[tuple[Tensor, Tensor]] | None = [] if preload_mb > 0 else None
        stored_bytes, batch_size = 0, 1
        seen_labels: set[int] = set()
        step, epoch, start = 0, 0, time.perf_counter()
        while (epochs is None or epoch < epochs) and (steps is None or step < steps):
            if memory is not None:
                order = torch.randperm(memory[0].shape[0])
                source: Iterable[tuple[Tensor, Tensor]] = (
                    (memory[0][idx], memory[1][idx]) for idx in order.split(batch_size)
                )
            else:
                source = (
                    (_example_images(b, use_ref), _example_labels(b, task, num_outputs, use_ref))
                    for b in train_loader
                )
            seen = 0
            for images_cpu, y_cpu in source:
                if epoch == 0 and task == "domain":
                    seen_labels.update(y_cpu.unique().tolist())
                if store is not None:
                    store.append((images_cpu, y_cpu))
                    stored_bytes += images_cpu.nelement() * images_cpu.element_size()
                    if stored_bytes > preload_mb * 2**20:
                        store = None
                batch_size = max(batch_size, images_cpu.shape[0])
                images, y = images_cpu.to(device), y_cpu.to(device)
                if model is None:  # image size taken from the data when not given
                    model = build_classifier(arch, num_outputs, tuple(images.shape[-2:])).to(device)
                if opt is None:
                    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
                    sched = torch.optim.lr_scheduler.LambdaLR(opt, _warmup_cosine(warmup_steps, total))
                model.train()
                loss = _loss(model(_augment(images, shift, hflip)), y, task)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if sched is not None:
                    sched.step()
                step += 1
                seen += 1
                if step % 50 == 0:
                    log.info("eval classifier step %d  loss %.4f", step, loss.item())
                if steps is not None and step >= steps:
                    break
            if seen == 0 and step > 0:
                break  # a one-shot iterable is exhausted after its first pass
            if seen == 0:
                raise DatasetError(
                    "the training loader yielded no batches; the evaluation classifier needs real training images."
                )
            full_pass = steps is None or step < steps
            if epoch == 0 and full_pass and task == "domain" and len(seen_labels) < 2:
                raise DatasetError(
                    f"the training batches hold only domain {sorted(seen_labels)}, so no classifier can be learnt; "
                    "use a view with every domain in 'image' or set use_ref for the two-domain view."
                )
            if store:
                memory = (torch.cat([x for x, _ in store]), torch.cat([t for _, t in store]))
            store = None
            epoch += 1
    assert model is not None
    log.info("eval classifier trained: %d steps, %d epochs, %.1f s", step, epoch, time.perf_counter() - start)
    return model.eval()


# ---------------------------------------------------------------------------------------------- scoring
@torch.no_grad()
def classifier_accuracy(model: nn.Module, images: Tensor, target: Tensor, task: str = "domain") -> Tensor:
    """Per-image correctness of the classifier's verdict on (translated) images.

    images: B×3×H×W in [-1, 1]. task ``"domain"``: target is B domain indices → B floats in {0, 1}
    (1 where the predicted domain is the target). task ``"multilabel"``: target is B×n target attributes in
    {0, 1} → B×n floats (1 where the predicted attribute agrees). Result on the model's device. The model
    should be in eval mode (as returned by the training and loading functions).
    """
    _check_task(task)
    logits = model(images.to(_device_of(model), torch.float32))
    return _correct(logits, torch.as_tensor(target), task)


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
    _check_task(task)
    was_training = model.training
    model.eval()
    book = MetricBook()
    n_images = 0
    for i, batch in enumerate(test_loader):
        if max_batches is not None and i >= max_batches:
            break
        images = _example_images(batch, use_ref)
        logits = model(images.to(_device_of(model)))
        y = _example_labels(batch, task, logits.shape[1], use_ref)
        correct = _correct(logits, y, task)
        book.add("accuracy", correct, columns=attr_names if task == "multilabel" else None)
        n_images += images.shape[0]
    model.train(was_training)
    if n_images == 0:
        raise DatasetError("the test loader yielded no batches; the real-image accuracy needs test images.")
    out = book.means()
    out["n"] = float(n_images)
    return out


# ---------------------------------------------------------------------------------------------- cache
def default_cache_dir() -> Path:
    """``$FACETRANS_CACHE`` if set, else ``~/.cache/facetrans``."""
    env = os.environ.get("FACETRANS_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "facetrans"


def _jsonable(value: Any) -> Any:
    """Plain JSON types, with sequences (tuple, ListConfig, …) as lists and mappings sorted by key."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, Sequence | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, Tensor):
        return value.tolist()
    return str(value)


def _infer_task(info: Mapping[str, Any]) -> str:
    hint = str(info.get("task") or info.get("view") or "").lower()
    if "attr" in hint or "multilabel" in hint:
        return "multilabel"
    if info.get("domain_names") or info.get("num_domains"):
        return "domain"
    if info.get("attr_names") or info.get("num_attrs"):
        return "multilabel"
    raise ConfigError(
        "cannot tell the evaluation classifier's task from the datamodule info; pass task='domain' or 'multilabel'."
    )


def _num_outputs(info: Mapping[str, Any], task: str) -> int:
    names, count = ("domain_names", "num_domains") if task == "domain" else ("attr_names", "num_attrs")
    if info.get(names):
        return len(info[names])
    if info.get(count):
        return int(info[count])
    raise ConfigError(
        f"the datamodule info has neither {names} nor {count}, which the task={task} evaluation classifier needs."
    )


def cache_key(
    datamodule_info: Mapping[str, Any],
    *,
    split: str = "train",
    arch: str = "small",
    task: str | None = None,
    settings: Mapping[str, Any] | None = None,
) -> str:
    """Stable 16-hex-digit hash of what defines an evaluation classifier.

    Hashes the ``KEY_FIELDS`` present in ``datamodule_info`` (dataset name, image size, domain/attribute
    names, …), the split it learns from, arch, task, the training ``settings`` and ``CACHE_FORMAT``.
    """
    if not (datamodule_info.get("name") or datamodule_info.get("dataset")):
        raise ConfigError("the datamodule info needs a 'name' to key the evaluation classifier cache.")
    task = task or _infer_task(datamodule_info)
    payload = {
        "format": CACHE_FORMAT,
        "data": {k: _jsonable(datamodule_info[k]) for k in KEY_FIELDS if k in datamodule_info},
        "split": split,
        "arch": arch,
        "task": task,
        "settings": _jsonable(dict(settings or {})),
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _atomic_write(path: Path, write: Callable[[str], None]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _write_sidecar(sidecar: Path, meta: Mapping[str, Any]) -> None:
    _atomic_write(sidecar, lambda tmp: Path(tmp).write_text(json.dumps(meta, indent=2, sort_keys=True)))


def _real_accuracy(
    model: nn.Module,
    test_loader_fn: Callable[[], Iterable[Mapping[str, Any]]],
    task: str,
    info: Mapping[str, Any],
    use_ref: bool,
) -> dict[str, float]:
    attr_names = info.get("attr_names") if task == "multilabel" else None
    acc = evaluate_real_accuracy(
        model, test_loader_fn(), task, attr_names=list(attr_names) if attr_names else None, use_ref=use_ref
    )
    log.info("evaluation classifier real-test accuracy %.4f", acc["accuracy"])
    chance = 0.5 if task == "multilabel" else 1.0 / _num_outputs(info, task)
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


def get_or_train_eval_classifier(
    datamodule_info: Mapping[str, Any],
    train_loader_fn: Callable[[], Iterable[Mapping[str, Any]]],
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    task: str | None = None,
    arch: str = "small",
    epochs: int | None = None,
    steps: int | None = None,
    lr: float = 3e-3,
    weight_decay: float = 1e-4,
    shift: float = DEFAULT_SHIFT,
    hflip: bool = False,
    seed: int = 0,
    use_ref: bool | None = None,
    warmup_steps: int = DEFAULT_WARMUP_STEPS,
    split: str = "train",
    device: str | torch.device = "cpu",
    test_loader_fn: Callable[[], Iterable[Mapping[str, Any]]] | None = None,
    force_retrain: bool = False,
) -> EvalClassifier:
    """Load the cached evaluation classifier for this data and settings, or train and cache it.

    datamodule_info: the datamodule's description — ``name`` (required), ``image_size`` (required), and
    ``domain_names`` / ``attr_names`` (or ``num_domains`` / ``num_attrs``); other ``KEY_FIELDS`` refine the
    key. train_loader_fn / test_loader_fn: called only when training is needed, so a cache hit costs no data
    loading. The file is ``<cache_dir>/evalclf-<key>.pt`` (state_dict, written atomically) with
    ``evalclf-<key>.json`` beside it (settings, data fields, real-test accuracy when test_loader_fn is given).
    A cache file that cannot be loaded is reported with a warning and replaced by a freshly trained one.
    ``use_ref`` (default: on for the two-domain view, whose ``image`` holds one domain only) also trains on
    the batches' labelled ``ref`` images.
    """
    task = task or _infer_task(datamodule_info)
    _check_task(task)
    num_outputs = _num_outputs(datamodule_info, task)
    image_size = datamodule_info.get("image_size")
    if image_size is None:
        raise ConfigError("the datamodule info needs an 'image_size' to build the evaluation classifier.")
    if epochs is None and steps is None:
        epochs = DEFAULT_EPOCHS  # resolved before keying, so a changed default cannot reuse an old cache
    if use_ref is None:
        use_ref = task == "domain" and datamodule_info.get("view") == "two_domain"
    settings = {
        "epochs": epochs,
        "steps": steps,
        "lr": lr,
        "weight_decay": weight_decay,
        "shift": shift,
        "hflip": hflip,
        "seed": seed,
        "use_ref": use_ref,
        "warmup_steps": warmup_steps,
    }
    key = cache_key(datamodule_info, split=split, arch=arch, task=task, settings=settings)
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    path = cache / f"evalclf-{key}.pt"
    sidecar = path.with_suffix(".json")
    device = torch.device(device)

    if path.exists() and not force_retrain:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            model = build_classifier(arch, num_outputs, image_size)
            model.load_state_dict(state)
        except Exception as exc:  # any unreadable cache (truncated, garbage, other arch) is handled alike
            warnings.warn(
                f"the cached evaluation classifier {path} could not be loaded ({type(exc).__name__}); retraining it.",
                UserWarning,
                stacklevel=2,
            )
        else:
            meta: dict[str, Any] = {}
            try:
                meta = json.loads(sidecar.read_text())
            except (OSError, ValueError):
                log.warning(
                    "sidecar %s missing or unreadable; using the classifier without its metadata", sidecar
                )
            model = model.to(device).eval()
            if meta.get("real_accuracy") is None and test_loader_fn is not None:
                meta["real_accuracy"] = _real_accuracy(model, test_loader_fn, task, datamodule_info, use_ref)
                _write_sidecar(sidecar, meta)
            log.info("loaded evaluation classifier %s", path)
            return EvalClassifier(model, task, num_outputs, key, path, True, meta)

    log.info("training evaluation classifier %s (%s, %s, %d outputs)", key, arch, task, num_outputs)
    start = time.perf_counter()
    model = train_eval_classifier(
        train_loader_fn(),
        num_outputs,
        task,
        arch,
        epochs=epochs,
        steps=steps,
        lr=lr,
        device=device,
        image_size=image_size,
        weight_decay=weight_decay,
        shift=shift,
        hflip=hflip,
        seed=seed,
        use_ref=use_ref,
        warmup_steps=warmup_steps,
    )
    meta = {
        "key": key,
        "format": CACHE_FORMAT,
        "data": {k: _jsonable(datamodule_info[k]) for k in KEY_FIELDS if k in datamodule_info},
        "split": split,
        "arch": arch,
        "task": task,
        "num_outputs": num_outputs,
        "settings": settings,
        "train_seconds": round(time.perf_counter() - start, 2),
        "torch": torch.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "real_accuracy": None,
    }
    if test_loader_fn is not None:
        meta["real_accuracy"] = _real_accuracy(model, test_loader_fn, task, datamodule_info, use_ref)

    try:
        cache.mkdir(parents=True, exist_ok=True)
        cpu_state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        _atomic_write(path, lambda tmp: torch.save(cpu_state, tmp))
        _write_sidecar(sidecar, meta)
    except OSError as exc:
        warnings.warn(
            f"could not cache the evaluation classifier in {cache} ({exc}); set FACETRANS_CACHE to a writable folder.",
            UserWarning,
            stacklevel=2,
        )
    return EvalClassifier(model, task, num_outputs, key, path, False, meta)
