"""Fitting the evaluation classifier on real images: Adam with a linear warm-up then cosine decay, whole-pixel
shift / flip augmentation, the first pass kept in memory for the later epochs. The settings come from one
:class:`~metrics.eval_classifier.recipe.Recipe`."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from metrics.eval_classifier.examples import check_task, example_images, example_labels, loss
from metrics.eval_classifier.model import build_classifier
from metrics.eval_classifier.recipe import Recipe
from suite.errors import ConfigError, DatasetError

log = logging.getLogger("metrics.eval_classifier")


def warmup_cosine(warmup_steps: int, total: float | None) -> Callable[[int], float]:
    """LR factor: linear warm-up over ``warmup_steps`` (at most a fifth of ``total``), then cosine decay to 0 at
    ``total`` (flat if unknown)."""

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


def augment(images: Tensor, shift: float, hflip: bool) -> Tensor:
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


class _Examples:
    """The training examples, pass after pass: from the loader on the first pass (kept in memory when they fit
    in ``preload_mb`` MiB), then reshuffled in memory; from the loader every pass otherwise."""

    def __init__(self, loader: Iterable[Mapping[str, Any]], task: str, num_outputs: int, use_ref: bool,
                 preload_mb: float) -> None:
        self.loader, self.task, self.num_outputs, self.use_ref = loader, task, num_outputs, use_ref
        self.preload_mb = preload_mb
        self.memory: tuple[Tensor, Tensor] | None = None  # the whole training set, once it has been seen
        self.store: list[tuple[Tensor, Tensor]] | None = [] if preload_mb > 0 else None
        self.stored_bytes, self.batch_size = 0, 1

    def one_pass(self) -> Iterator[tuple[Tensor, Tensor]]:
        """(images, labels) on the CPU, one batch at a time."""
        if self.memory is not None:
            order = torch.randperm(self.memory[0].shape[0])
            for idx in order.split(self.batch_size):
                yield self.memory[0][idx], self.memory[1][idx]
            return
        for b in self.loader:
            images, y = example_images(b, self.use_ref), example_labels(b, self.task, self.num_outputs, self.use_ref)
            if self.store is not None:
                self.store.append((images, y))
                self.stored_bytes += images.nelement() * images.element_size()
                if self.stored_bytes > self.preload_mb * 2**20:
                    self.store = None
            self.batch_size = max(self.batch_size, images.shape[0])
            yield images, y

    def end_pass(self) -> None:
        """After the first pass: keep what was stored, stop storing."""
        if self.store:
            self.memory = (torch.cat([x for x, _ in self.store]), torch.cat([t for _, t in self.store]))
        self.store = None


def _total_steps(loader: Any, recipe: Recipe) -> float | None:
    """Optimizer steps the fit will take (None when the loader has no length and no step cap is set)."""
    try:
        per_epoch = len(loader)
    except TypeError:
        return recipe.steps
    return min(recipe.steps or math.inf, (recipe.epochs or math.inf) * per_epoch)


def train_eval_classifier(
    train_loader: Iterable[Mapping[str, Any]],
    num_outputs: int,
    task: str = "domain",
    arch: str = "small",
    recipe: Recipe | None = None,
    device: str | torch.device = "cpu",
    *,
    image_size: int | Sequence[int] | None = None,
    preload_mb: float = 1024.0,
    **settings: Any,
) -> nn.Module:
    """Train an evaluation classifier on real images and return it in eval mode on ``device``.

    train_loader: batches with ``image`` (B×3×H×W in [-1, 1]) and ``domain`` (B int, task ``"domain"``,
    cross-entropy) or ``attrs`` (B×n in {0, 1}, task ``"multilabel"``, BCE). The fit follows ``recipe`` with
    ``settings`` (any :class:`Recipe` field: ``epochs``, ``steps``, ``lr``, …) on top: ``epochs`` passes, stopping
    early after ``steps`` optimizer steps; Adam with a linear warm-up, then cosine decay; each image translated at
    random by up to ``shift`` of its side (border pixels repeat; 0 turns it off) and, with ``hflip``, flipped at
    random (only for left/right-symmetric labels). ``use_ref`` adds each batch's ``ref`` images with their
    ``ref_domain`` / ``ref_attrs`` labels: the two-domain view needs it, since its ``image`` holds the source
    domain only.

    When the first pass's images and labels fit in ``preload_mb`` MiB they are kept in memory and later
    epochs reshuffle them there instead of iterating the loader again (a datamodule may render or decode
    much more per batch than the classifier needs); 0 turns this off. The global RNG is forked and seeded,
    so results are reproducible and the caller's RNG is untouched.
    """
    check_task(task)
    recipe = Recipe.of(recipe, **settings)
    epochs, steps = recipe.epochs, recipe.steps
    if (epochs is not None and epochs < 1) or (steps is not None and steps < 1):
        raise ConfigError(
            f"evaluation classifier epochs and steps must be positive, got epochs={epochs}, steps={steps}."
        )
    device = torch.device(device)

    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(recipe.seed)
        model: nn.Module | None = None
        if image_size is not None:
            model = build_classifier(arch, num_outputs, image_size).to(device)
        total = _total_steps(train_loader, recipe)
        examples = _Examples(train_loader, task, num_outputs, bool(recipe.use_ref), preload_mb)
        opt = sched = None
        seen_labels: set[int] = set()
        step, epoch, start = 0, 0, time.perf_counter()
        while (epochs is None or epoch < epochs) and (steps is None or step < steps):
            seen = 0
            for images_cpu, y_cpu in examples.one_pass():
                if epoch == 0 and task == "domain":
                    seen_labels.update(y_cpu.unique().tolist())
                images, y = images_cpu.to(device), y_cpu.to(device)
                if model is None:  # image size taken from the data when not given
                    model = build_classifier(arch, num_outputs, tuple(images.shape[-2:])).to(device)
                if opt is None:
                    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
                    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(recipe.warmup_steps, total))
                model.train()
                value = loss(model(augment(images, recipe.shift, recipe.hflip)), y, task)
                opt.zero_grad(set_to_none=True)
                value.backward()
                opt.step()
                sched.step()
                step += 1
                seen += 1
                if step % 50 == 0:
                    log.info("eval classifier step %d  loss %.4f", step, value.item())
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
            examples.end_pass()
            epoch += 1
    assert model is not None
    log.info("eval classifier trained: %d steps, %d epochs, %.1f s", step, epoch, time.perf_counter() - start)
    return model.eval()
