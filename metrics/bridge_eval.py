"""Scores and figures of the label/reference bridge (Huang et al., ICCV 2021; supplement Tables 1–3, Figs. 6–19).

:func:`bridge_report` translates a loader's images in both modes and judges them with a multi-label evaluation
classifier trained on real images (``metrics.eval_classifier``, task ``multilabel``):

- ``label/accuracy`` (and ``label/accuracy/<attr>``): label-based translation to ``target_attrs``, fraction of
  attribute decisions of the classifier that agree with the target, averaged over ``num_codes`` random codes.
  ``label/accuracy_changed[/<attr>]``: the same over the attributes the translation had to change only.
- ``reference/accuracy`` (and ``/<attr>``): reference-based translation with the batch's ``ref`` (whose labels
  are ``target_attrs``): does the output adopt the reference's value, counted only for the attributes where
  source and reference differ (elsewhere "adopting" would equal keeping). ``…/n`` counts those decisions.
- ``label/diversity``: mean pairwise L1 between the ``num_codes`` label-based results of an input
  (:func:`metrics.diversity.pairwise_diversity`; needs ``num_codes`` ≥ 2).
- ``num_images``.

Figures written to ``out_dir`` from the first batch: ``bridge_label_attributes.png`` (rows: a source, then the
source with each attribute flipped alone — supplement Figs. 14–19), ``bridge_label_codes.png`` (a source, then
``num_codes`` results for its ``target_attrs``, then the true counterfactual where the data has one — Figs. 9–10)
and ``bridge_reference_grid.png`` (top row sources, left column references, each cell the source translated
after that reference — Figs. 6–8).

Evaluation wiring (``suite/evaluation.py``), for a multi-attribute checkpoint::

    evaluator = get_or_train_eval_classifier(info, dm.train_dataloader, cache_dir, task="multilabel", ...)
    metrics.update(bridge_report(module, loader, evaluator, out_dir, max_images=max_images))
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torchvision.utils import save_image

from metrics.diversity import pairwise_diversity
from metrics.eval_classifier import classifier_accuracy
from metrics.streaming import MetricBook
from suite.errors import ConfigError, DatasetError

__all__ = ["MaskedMean", "bridge_report", "reference_grid"]

BATCH_KEYS = ("image", "attrs", "target_attrs", "ref")


class MaskedMean:
    """Per-column mean of B×n values over the entries where a B×n mask is set (float64 sums)."""

    def __init__(self, columns: Sequence[str]) -> None:
        self.columns = list(columns)
        self.sum = torch.zeros(len(self.columns), dtype=torch.float64)
        self.count = torch.zeros(len(self.columns), dtype=torch.float64)

    def update(self, values: Tensor, mask: Tensor) -> None:
        m = mask.detach().to("cpu", torch.float64)
        self.sum += (values.detach().to("cpu", torch.float64) * m).sum(0)
        self.count += m.sum(0)

    def summary(self, name: str) -> dict[str, float]:
        """``name`` (over every counted entry), ``name/<column>`` for columns with entries, ``name/n``."""
        total = float(self.count.sum())
        out = {name: float(self.sum.sum()) / total if total else float("nan"), f"{name}/n": total}
        for col, s, c in zip(self.columns, self.sum.tolist(), self.count.tolist()):
            if c:
                out[f"{name}/{col}"] = s / c
        return out


def _classifier(classifier: Any) -> nn.Module:
    """The nn.Module of an ``EvalClassifier`` (which must be multi-label) or a bare module."""
    task = getattr(classifier, "task", "multilabel")
    if task != "multilabel":
        raise ConfigError(f"bridge_report needs a multilabel evaluation classifier (task='multilabel'), got task={task!r}.")
    return getattr(classifier, "model", classifier)


def _to01(images: Tensor) -> Tensor:
    return ((images.detach().float().cpu() + 1) / 2).clamp(0, 1)


def _save_rows(path: Path, rows: list[list[Tensor]]) -> None:
    """Each row a list of 3×H×W images in [−1, 1] (same count per row)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flat = [_to01(img) for row in rows for img in row]
    save_image(torch.stack(flat), str(path), nrow=len(rows[0]), padding=2, pad_value=1.0)


def reference_grid(module: Any, sources: Tensor, source_attrs: Tensor, references: Tensor, reference_attrs: Tensor,
                   scale: float | None = None) -> Tensor:
    """R×S reference-based results: cell (i, j) = source j translated after reference i (R×S×3×H×W)."""
    rows = []
    for ref, y_r in zip(references, reference_attrs):
        out = module.translate(sources, None, source_attrs=source_attrs, reference=ref[None],
                               reference_attrs=y_r[None], scale=scale)
        rows.append(out["image"])
    return torch.stack(rows)


def _figures(module: Any, batch: Mapping[str, Tensor], out_dir: Path, attr_names: Sequence[str], num_codes: int,
             num_grid: int, scale: float | None) -> None:
    k = min(num_grid, batch["image"].shape[0])
    x, y_s, y_t, ref = (batch[key][:k] for key in ("image", "attrs", "target_attrs", "ref"))
    # label-based, one attribute flipped at a time (same code r for the whole row)
    flips = []
    for j in range(len(attr_names)):
        y_j = y_s.clone()
        y_j[:, j] = 1 - y_j[:, j]
        flips.append(module.translate(x, y_j, source_attrs=y_s, scale=scale)["image"])
    _save_rows(out_dir / "bridge_label_attributes.png", [[x[i]] + [f[i] for f in flips] for i in range(k)])
    # label-based, several codes for the target attributes (+ the true counterfactual when the data has it)
    codes = module.translate(x, y_t, source_attrs=y_s, num_codes=num_codes, scale=scale)["images"]
    gt = batch.get("gt")
    _save_rows(out_dir / "bridge_label_codes.png",
               [[x[i], *codes[:, i]] + ([gt[i]] if gt is not None else []) for i in range(k)])
    # reference-based: sources along the top, references down the left
    grid = reference_grid(module, x, y_s, ref, y_t, scale)
    blank = torch.ones_like(x[0])
    rows = [[blank, *x]] + [[ref[i], *grid[i]] for i in range(k)]
    _save_rows(out_dir / "bridge_reference_grid.png", rows)


@torch.no_grad()
def bridge_report(
    module: Any,
    loader: Iterable[Mapping[str, Any]],
    classifier: Any,
    out_dir: str | Path,
    *,
    num_codes: int = 4,
    max_images: int | None = None,
    num_grid: int = 8,
    scale: float | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Per-attribute target accuracy of both modes, label-based diversity, and the three figures (module doc).

    module: a trained ``method=bridge`` module (``translate`` with ``source_attrs`` / ``reference`` /
    ``num_codes``; ``data_info["attr_names"]``), in eval mode. loader: multi-attribute batches (``image``,
    ``attrs``, ``ref``, ``target_attrs`` — the datamodules' view). classifier: an ``EvalClassifier`` of task
    ``multilabel`` or a bare module giving B×n logits. ``scale``: att_diff scale (None: the module's
    ``test_diff_scale``). ``seed`` fixes the label-based codes. Returns flat ``{name: float}``.
    """
    clf = _classifier(classifier)
    attr_names = list(module.data_info["attr_names"])
    device = torch.device(getattr(module, "device", "cpu"))
    out_dir = Path(out_dir)
    gen = torch.Generator(device=device).manual_seed(seed)
    book = MetricBook()
    changed_label, changed_ref = MaskedMean(attr_names), MaskedMean(attr_names)
    seen, figures_done = 0, False
    for batch in loader:
        if max_images is not None and seen >= max_images:
            break
        missing = [k for k in BATCH_KEYS if k not in batch]
        if missing:
            raise DatasetError(f"bridge_report needs multi-attribute batches with {', '.join(BATCH_KEYS)}; missing {', '.join(missing)}.")
        b = {k: v.to(device) for k, v in batch.items() if torch.is_tensor(v)}
        x, y_s, y_t, ref = b["image"], b["attrs"].float(), b["target_attrs"].float(), b["ref"]
        changed = y_s != y_t

        label = module.translate(x, y_t, source_attrs=y_s, num_codes=num_codes, scale=scale, generator=gen)["images"]
        correct = torch.stack([classifier_accuracy(clf, img, y_t, "multilabel") for img in label]).mean(0).cpu()
        book.add("label/accuracy", correct, columns=attr_names)
        changed_label.update(correct, changed)
        if label.shape[0] >= 2:
            book.add("label/diversity", pairwise_diversity(label))

        by_ref = module.translate(x, None, source_attrs=y_s, reference=ref, reference_attrs=y_t, scale=scale)["image"]
        changed_ref.update(classifier_accuracy(clf, by_ref, y_t, "multilabel"), changed)

        if not figures_done and num_grid > 0:
            _figures(module, b, out_dir, attr_names, max(num_codes, 1), num_grid, scale)
            figures_done = True
        seen += x.shape[0]
    if seen == 0:
        raise DatasetError("bridge_report: the loader yielded no batches.")
    metrics = book.means()
    metrics.update(changed_label.summary("label/accuracy_changed"))
    metrics.update(changed_ref.summary("reference/accuracy"))
    metrics["num_images"] = float(seen)
    return metrics
