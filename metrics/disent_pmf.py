"""Fig. 6 of Oldfield et al. (Sec. IV-B2): the class-conditional probability mass functions of each attribute
classifier's posterior on every code.

For classifier C_c and code z_n the PMF of true class k is ``P_cn[k, j] = mean over the images with y_c = k of
softmax(C_c(z_n))_j`` — a K_c × K_c matrix whose rows sum to 1. On its own code (n = c) the mass sits on the
diagonal; on another attribute's code, with the disentanglement loss (Eq. 4), every row is flat (1/K_c each),
and without it the other code still predicts c (the paper's first column: C_exp on z_id, λdis 1 vs 0).

- ``class_conditional_pmfs(module, loader)``: the PMFs of every (classifier, code) pair of a ``method=disent``
  module, with the number of images of each true class. Images whose class is UNSEEN_CLASS (a held-out subject:
  no class of C_id) condition nothing, so on a test split of unseen people C_id's panels are empty.
- ``save_pmf_figure(path, …)``: the panels as one PNG (rows: classifiers, columns: codes; each panel a heat map,
  true class down, predicted class across, white 0 → dark 1 on one absolute scale, so a flat row is pale).
- ``pmf_summary``: ``disent/pmf_true/<clf>/<code>`` = mean over seen classes of P[k, k] (1 = always right with
  full confidence, 1/K = flat), a number to log beside the figure.
- ``log_figure``: the PNG to every logger that takes images (W&B ``log_image``, TensorBoard), or to the active
  W&B run outside training.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from datamodules.base import UNSEEN_CLASS

FIG6_FILE = "fig6_class_conditional_pmfs.png"
FIG6_KEY = "disent/fig6_pmf"

__all__ = ["FIG6_FILE", "FIG6_KEY", "capped_batches", "class_conditional_pmfs", "log_figure", "pmf_summary",
           "save_pmf_figure"]


def capped_batches(loader: Iterable[dict], max_images: int | None, device: torch.device | str):
    """``(batch, images)`` of ``loader`` until ``max_images`` images (None: all); ``images`` is the batch's
    ``image`` on ``device``, the last one cut to the cap."""
    seen = 0
    for batch in loader:
        x = batch["image"].to(device)
        if max_images is not None:
            x = x[: max(0, max_images - seen)]
        if x.shape[0] == 0:
            return
        yield batch, x
        seen += x.shape[0]
        if max_images is not None and seen >= max_images:
            return  # the cap is reached: no further batch is loaded


@torch.no_grad()
def class_conditional_pmfs(
    module: Any, loader: Iterable[dict], max_images: int | None = 1000,
    classifiers: Sequence[str] | None = None, codes: Sequence[str] | None = None,
) -> tuple[dict[tuple[str, str], Tensor], dict[str, Tensor]]:
    """``({(clf, code): K×K PMF}, {clf: K image counts per true class})`` over up to ``max_images`` images of
    ``loader`` (batches with ``image`` and ``factors``); rows of classes without images are zero."""
    clfs = list(classifiers or module.attributes)
    names = list(codes or module.code_names)
    sums = {(c, n): torch.zeros(module.num_classes[c], module.num_classes[c], dtype=torch.float64)
            for c in clfs for n in names}
    counts = {c: torch.zeros(module.num_classes[c], dtype=torch.float64) for c in clfs}
    was_training = module.training
    module.eval()
    try:
        for batch, x in capped_batches(loader, max_images, module.device):
            labels = module.labels_of(batch, unseen=True)
            z = module.encode(x, inference=True, names=names)
            for c in clfs:
                y = labels[c][: x.shape[0]].cpu()
                known = y != UNSEEN_CLASS
                onehot = torch.nn.functional.one_hot(y[known], module.num_classes[c]).double()
                counts[c] += onehot.sum(0)
                for n in names:
                    post = torch.softmax(module.code_logits(c, z[n]).float(), dim=1).cpu().double()
                    sums[(c, n)] += onehot.T @ post[known]
    finally:
        module.train(was_training)
    pmfs = {key: s / counts[key[0]].clamp_min(1).unsqueeze(1) for key, s in sums.items()}
    return pmfs, counts


def pmf_summary(pmfs: Mapping[tuple[str, str], Tensor], counts: Mapping[str, Tensor]) -> dict[str, float]:
    """``disent/pmf_true/<clf>/<code>``: the mean over classes with images of P[k, k] (NaN when none has one)."""
    out = {}
    for (c, n), p in pmfs.items():
        has = counts[c] > 0
        out[f"disent/pmf_true/{c}/{n}"] = float(p.diagonal()[has].mean()) if bool(has.any()) else float("nan")
    return out


def _shade(p: float) -> tuple[int, int, int]:
    """White (0) → dark blue (1)."""
    p = min(max(p, 0.0), 1.0)
    return (int(255 - 247 * p), int(255 - 207 * p), int(255 - 148 * p))


def save_pmf_figure(
    path: str | Path, pmfs: Mapping[tuple[str, str], Tensor], counts: Mapping[str, Tensor],
    class_names: Mapping[str, Sequence[Any]] | None = None, title: str = "", panel: int = 220,
) -> Path:
    """The Fig. 6 grid: a row per classifier, a column per code; each panel the K×K PMF of one pair."""
    clfs = list(dict.fromkeys(c for c, _ in pmfs))
    names = list(dict.fromkeys(n for _, n in pmfs))
    pad, head, top = 10, 28, 22 if title else 0
    cell_w, cell_h = panel + 2 * pad, panel + head + pad
    img = Image.new("RGB", (len(names) * cell_w, top + len(clfs) * cell_h), "white")
    draw, font = ImageDraw.Draw(img), ImageFont.load_default()
    if title:
        draw.text((pad, 4), title, fill="black", font=font)
    for i, c in enumerate(clfs):
        k = pmfs[(c, names[0])].shape[0]
        labels = list((class_names or {}).get(c) or range(k))
        for j, n in enumerate(names):
            ox, oy = j * cell_w + pad, top + i * cell_h
            p = pmfs[(c, n)]
            has = counts[c] > 0
            draw.text((ox, oy + 2), f"C_{c} on z_{n}", fill="black", font=font)
            shown = int(has.sum())
            sub = f"{shown}/{k} classes, uniform 1/{k}" if shown else "no image of a training class"
            draw.text((ox, oy + 14), sub, fill=(90, 90, 90), font=font)
            box = (ox, oy + head, ox + panel, oy + head + panel)
            draw.rectangle(box, outline=(160, 160, 160))
            step = panel / k
            for r in range(k):
                for q in range(k):
                    fill = _shade(float(p[r, q])) if bool(has[r]) else (235, 235, 235)
                    x0, y0 = box[0] + q * step, box[1] + r * step
                    draw.rectangle((x0, y0, x0 + step, y0 + step), fill=fill)
            if k <= 8:  # class names along the left edge when they fit
                for r, name in enumerate(labels[:k]):
                    draw.text((box[0] + 2, box[1] + r * step + step / 2 - 5), str(name)[:8], fill=(200, 60, 60), font=font)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def log_figure(path: Path, loggers: Iterable[Any] = (), step: int | None = None, key: str = FIG6_KEY) -> bool:
    """Log the PNG to every logger that takes images (W&B ``log_image``, TensorBoard ``add_image``); with none,
    to the active W&B run if there is one (an evaluation inside a W&B session). True when logged somewhere."""
    logged = False
    for logger in loggers:
        if hasattr(logger, "log_image"):
            logger.log_image(key=key, images=[str(path)], step=step)
            logged = True
        elif hasattr(getattr(logger, "experiment", None), "add_image"):
            from torchvision.io import read_image

            logger.experiment.add_image(key, read_image(str(path)), step or 0)
            logged = True
    active = getattr(sys.modules.get("wandb"), "run", None)
    if not logged and active is not None:
        import wandb

        active.log({key: wandb.Image(str(path))})
        logged = True
    return logged
