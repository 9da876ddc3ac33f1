"""Disentanglement statistics of attribute codes (Oldfield et al., Sec. IV-B): the entropy of each classifier's
posterior on every encoding, the Hopkins statistic of an encoding within each class, and t-SNE plots of the
encodings coloured by each attribute.

- ``posterior_entropy``: H(softmax(logits)) per row, in nats; log K for a uniform posterior. On the encoding of
  another attribute (or on z_0) it should be high (the attribute is absent), on its own low.
- ``hopkins_statistic``: Hopkins & Skellam's cluster tendency, in the form of Banerjee & Dave:
  ``H = Σu_i / (Σu_i + Σw_i)``, u_i the distance of a uniform random point of the data's bounding box to its
  nearest data point, w_i that of a sampled data point to its nearest other data point. ≈ 0.5 for uniformly
  spread points, → 1 for tight clusters (> 0.75: clustered at the 90 % level). The paper computes it within
  each expression class of the expression codes: with the disentanglement loss the illumination sub-clusters
  vanish (≈ 0.5), without it they remain (Table III).
- ``tsne``: exact t-SNE (van der Maaten & Hinton, 2008) in torch — perplexity calibration by bisection, early
  exaggeration, momentum and gains — for a few hundred to a few thousand points (scikit-learn is not a
  dependency). ``save_scatter_png`` draws panels of coloured points with PIL (matplotlib is not one either).
- ``disentanglement_report(module, loader, out_dir)``: all of the above for a trained ``method=disent`` module on
  a multi_factor loader, as flat ``disent/…`` metrics; writes ``disentanglement_tsne.png`` into ``out_dir``.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from datamodules.base import UNSEEN_CLASS
from metrics.disent_pmf import capped_batches
from suite.errors import ConfigError

__all__ = [
    "posterior_entropy",
    "hopkins_statistic",
    "tsne",
    "save_scatter_png",
    "disentanglement_report",
    "TSNE_FILE",
]

TSNE_FILE = "disentanglement_tsne.png"


# ----------------------------------------------------------------------------------------------- entropy
def posterior_entropy(logits: Tensor) -> Tensor:
    """Entropy (nats) of the softmax posterior of each row of ``logits`` (B×K) → B; log K when uniform."""
    logp = torch.log_softmax(logits.detach().float(), dim=1)
    return -(logp.exp() * logp).sum(dim=1)


# ----------------------------------------------------------------------------------------------- Hopkins
def _as_matrix(points: Tensor | np.ndarray) -> Tensor:
    x = torch.as_tensor(points).detach().to("cpu", torch.float64)
    return x.reshape(x.shape[0], -1)


def pca_project(points: Tensor | np.ndarray, dims: int) -> Tensor:
    """N×D points (any trailing shape) centred and projected on their top ``dims`` principal axes → N×min(dims, D, N)."""
    x = _as_matrix(points)
    x = x - x.mean(dim=0, keepdim=True)
    k = min(dims, x.shape[0], x.shape[1])
    _, _, vh = torch.linalg.svd(x, full_matrices=False)
    return x @ vh[:k].T


def hopkins_statistic(
    points: Tensor | np.ndarray, sample_size: int | None = None, repeats: int = 10, seed: int = 0
) -> float:
    """Hopkins statistic of N points (N×D, or N×… flattened); see the module docstring. ``sample_size`` m
    (default N/10, at least 1, below N) probes per draw, averaged over ``repeats`` draws. NaN for fewer than 3
    points or when all points coincide."""
    x = _as_matrix(points)
    n, d = x.shape
    if n < 3:
        return math.nan
    m = min(n - 1, max(1, sample_size or n // 10))
    lo, hi = x.min(dim=0).values, x.max(dim=0).values
    if bool((hi - lo).max() <= 0):
        return math.nan
    gen = torch.Generator().manual_seed(int(seed))
    values = []
    for _ in range(repeats):
        uniform = lo + (hi - lo) * torch.rand(m, d, generator=gen, dtype=torch.float64)
        u = torch.cdist(uniform, x).min(dim=1).values
        idx = torch.randperm(n, generator=gen)[:m]
        dist = torch.cdist(x[idx], x)
        dist[torch.arange(m), idx] = math.inf  # a point is not its own neighbour
        w = dist.min(dim=1).values
        values.append(float(u.sum() / (u.sum() + w.sum())))
    return float(np.mean(values))


# ------------------------------------------------------------------------------------------------- t-SNE
def _squared_distances(x: Tensor) -> Tensor:
    sq = (x * x).sum(dim=1)
    return (sq[:, None] + sq[None, :] - 2 * x @ x.T).clamp_min(0)


def _affinities(dist: Tensor, perplexity: float, steps: int = 64) -> Tensor:
    """Conditional p_{j|i} with each row's Gaussian precision β_i bisected (in log space) so that the row's
    entropy is log(perplexity); then symmetrised, p_ij = (p_{j|i} + p_{i|j}) / 2N."""
    n = dist.shape[0]
    eye = torch.eye(n, dtype=torch.bool)
    d = dist.masked_fill(eye, math.inf)
    d = d - d.min(dim=1, keepdim=True).values  # stability: exp(−β·0) = 1 for each row's nearest point
    target = math.log(perplexity)
    lo = torch.full((n, 1), -30.0, dtype=dist.dtype)
    hi = torch.full((n, 1), 30.0, dtype=dist.dtype)
    for _ in range(steps):
        beta = ((lo + hi) / 2).exp()
        w = torch.exp(-beta * d)
        z = w.sum(dim=1, keepdim=True)
        p = w / z
        ent = z.log() + beta * (p * d.masked_fill(eye, 0)).sum(dim=1, keepdim=True)
        too_flat = ent > target  # entropy too high → sharpen (raise β)
        lo = torch.where(too_flat, (lo + hi) / 2, lo)
        hi = torch.where(too_flat, hi, (lo + hi) / 2)
    p = torch.exp(-((lo + hi) / 2).exp() * d)
    p = p / p.sum(dim=1, keepdim=True)
    return ((p + p.T) / (2 * n)).clamp_min(1e-12)


def tsne(
    points: Tensor | np.ndarray,
    dims: int = 2,
    perplexity: float = 30.0,
    iterations: int = 500,
    exaggeration: float = 12.0,
    exaggeration_iterations: int = 125,
    pca_dims: int = 50,
    seed: int = 0,
) -> np.ndarray:
    """Exact t-SNE of N points (N×D or N×…): PCA to ``pca_dims`` first, Student-t kernel in the embedding, gradient
    descent with momentum (0.5 then 0.8), gains and early exaggeration; learning rate max(N/exaggeration/4, 50)
    (the "auto" rule). Perplexity is capped at (N−1)/3. Returns N×dims (float64)."""
    x = _as_matrix(points)
    n = x.shape[0]
    if n < 4:
        raise ValueError(f"t-SNE needs at least 4 points, got {n}")
    if x.shape[1] > pca_dims:
        x = pca_project(x, pca_dims)
    x = x - x.mean(dim=0)
    scale = x.abs().max()
    if scale > 0:
        x = x / scale
    p = _affinities(_squared_distances(x), min(perplexity, (n - 1) / 3))
    gen = torch.Generator().manual_seed(int(seed))
    y = torch.randn(n, dims, generator=gen, dtype=torch.float64) * 1e-4
    update = torch.zeros_like(y)
    gains = torch.ones_like(y)
    lr = max(n / exaggeration / 4, 50.0)
    eye = torch.eye(n, dtype=torch.bool)
    for it in range(iterations):
        num = (1.0 / (1.0 + _squared_distances(y))).masked_fill(eye, 0)
        q = (num / num.sum()).clamp_min(1e-12)
        strength = (p * (exaggeration if it < exaggeration_iterations else 1.0) - q) * num
        grad = 4 * (strength.sum(dim=1, keepdim=True) * y - strength @ y)
        momentum = 0.5 if it < exaggeration_iterations else 0.8
        same = (grad > 0) == (update > 0)
        gains = torch.where(same, gains * 0.8, gains + 0.2).clamp_min(0.01)
        update = momentum * update - lr * gains * grad
        y = y + update
        y = y - y.mean(dim=0)
    return y.numpy()


# ----------------------------------------------------------------------------------------- scatter plots
_BASE_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
                 (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def palette(k: int) -> list[tuple[int, int, int]]:
    """k distinguishable RGB colours (a fixed ten, then evenly spaced hues)."""
    if k <= len(_BASE_COLOURS):
        return _BASE_COLOURS[:k]
    return [tuple(int(255 * c) for c in colorsys.hsv_to_rgb(i / k, 0.75, 0.9)) for i in range(k)]  # type: ignore[misc]


def save_scatter_png(
    path: str | Path,
    panels: Sequence[Mapping[str, Any]],
    columns: int | None = None,
    panel_size: int = 300,
    legend_width: int = 110,
    max_legend: int = 12,
    point_radius: int = 2,
) -> Path:
    """A grid of scatter panels as one PNG. Each panel: ``{"title": str, "coords": N×2, "labels": N ints,
    "names": class names}``; points coloured by label, with a legend (the first ``max_legend`` classes)."""
    if not panels:
        raise ValueError("save_scatter_png needs at least one panel")
    columns = columns or len(panels)
    rows = math.ceil(len(panels) / columns)
    title_h, pad = 16, 8
    cell_w, cell_h = panel_size + legend_width, panel_size + title_h
    img = Image.new("RGB", (columns * cell_w, rows * cell_h), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    for i, panel in enumerate(panels):
        ox, oy = (i % columns) * cell_w, (i // columns) * cell_h
        coords = np.asarray(panel["coords"], dtype=np.float64)
        labels = np.asarray(panel["labels"], dtype=np.int64)
        names = list(panel.get("names") or [str(v) for v in range(int(labels.max(initial=0)) + 1)])
        colours = palette(max(len(names), int(labels.max(initial=0)) + 1))
        draw.text((ox + pad, oy + 2), str(panel.get("title", "")), fill="black", font=font)
        box = (ox + pad, oy + title_h, ox + panel_size - pad, oy + cell_h - pad)
        draw.rectangle(box, outline=(200, 200, 200))
        if len(coords):
            lo, hi = coords.min(axis=0), coords.max(axis=0)
            span = float((hi - lo).max()) or 1.0  # one scale for both axes: distances keep their meaning
            inner = panel_size - 2 * pad - 2 * point_radius - 2
            xy = ((coords - (lo + hi) / 2) / span + 0.5) * inner
            for (px, py), lab in zip(xy, labels):
                cx = box[0] + point_radius + 1 + px
                cy = box[3] - point_radius - 1 - py
                draw.ellipse((cx - point_radius, cy - point_radius, cx + point_radius, cy + point_radius), fill=colours[lab])
        shown = names[:max_legend]
        for j, name in enumerate(shown):
            ly = oy + title_h + j * 14
            lx = ox + panel_size
            draw.rectangle((lx, ly + 3, lx + 8, ly + 11), fill=colours[j])
            draw.text((lx + 12, ly), str(name)[:14], fill="black", font=font)
        if len(names) > max_legend:
            draw.text((ox + panel_size, oy + title_h + len(shown) * 14), f"+{len(names) - max_legend} more", fill="black", font=font)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


# ---------------------------------------------------------------------------------------------- the report
def _projection(dim: int, out: int, seed: int, device: torch.device) -> Tensor | None:
    """A fixed Gaussian random projection (distances kept up to a small factor, Johnson–Lindenstrauss) for codes
    larger than ``out`` dimensions, so a thousand 128-px codes fit in memory; None when not needed."""
    if dim <= out:
        return None
    gen = torch.Generator().manual_seed(int(seed) + 7919)
    return (torch.randn(dim, out, generator=gen) / math.sqrt(out)).to(device)


@torch.no_grad()
def collect_codes(
    module: Any, loader: Iterable[dict], max_images: int | None = 1000, project_dims: int = 1024, seed: int = 0
) -> tuple[dict[str, Tensor], dict[str, Tensor], dict[str, Tensor], dict[tuple[str, str], Tensor], int]:
    """Encode up to ``max_images`` images of ``loader`` with the module's inference encoders. Returns (codes
    {code: N×D' float32, randomly projected when D > project_dims}, labels {attribute: N; UNSEEN_CLASS for a
    held-out subject}, entropies {(classifier, code): N}, correct {(classifier, code): N of 1/0, NaN where the
    true class is UNSEEN_CLASS}, N)."""
    device = module.device
    attrs, names = list(module.attributes), list(module.code_names)
    codes: dict[str, list[Tensor]] = {n: [] for n in names}
    labels: dict[str, list[Tensor]] = {a: [] for a in attrs}
    ent: dict[tuple[str, str], list[Tensor]] = {(a, n): [] for a in attrs for n in names}
    correct: dict[tuple[str, str], list[Tensor]] = {(a, n): [] for a in attrs for n in names}
    proj: Tensor | None = None
    seen = 0
    was_training = module.training
    module.eval()
    try:
        for batch, x in capped_batches(loader, max_images, device):
            y = {a: t[: x.shape[0]].to(device).long() for a, t in module.labels_of(batch, unseen=True).items()}
            z = module.encode(x, inference=True)
            for n in names:
                for a in attrs:
                    logits = module.code_logits(a, z[n])
                    ent[(a, n)].append(posterior_entropy(logits).cpu())
                    hit = (logits.argmax(dim=1) == y[a]).float()
                    correct[(a, n)].append(hit.masked_fill(y[a] == UNSEEN_CLASS, math.nan).cpu())  # no class: no score
                flat = z[n].flatten(1).float()
                if proj is None and seen == 0 and n == names[0]:
                    proj = _projection(flat.shape[1], project_dims, seed, flat.device)
                codes[n].append((flat @ proj if proj is not None else flat).cpu())
            for a in attrs:
                labels[a].append(y[a].cpu())
            seen += x.shape[0]
    finally:
        module.train(was_training)
    if seen == 0:
        raise ConfigError("disentanglement_report: the loader gave no images.")
    cat = lambda d: {k: torch.cat(v) for k, v in d.items()}  # noqa: E731
    return cat(codes), cat(labels), cat(ent), cat(correct), seen


def disentanglement_report(
    module: Any,
    loader: Iterable[dict],
    out_dir: str | Path | None = None,
    *,
    max_images: int | None = 1000,
    hopkins_dims: int = 2,
    hopkins_min_points: int = 10,
    tsne_points: int = 500,
    tsne_iterations: int = 500,
    perplexity: float = 30.0,
    project_dims: int = 1024,
    seed: int = 0,
) -> dict[str, float]:
    """The Sec. IV-B analysis of a trained ``method=disent`` module on a multi_factor loader (batches with
    ``image`` and ``factors``; e.g. the test split, whose identities are unseen in training: their identity label is
    UNSEEN_CLASS, so identity accuracies there are NaN and no identity class gets a Hopkins value; entropies are
    unaffected). Flat metrics (code ∈ attributes + ``rest``, clf ∈ attributes):

    - ``disent/entropy/<clf>/<code>``: mean posterior entropy (nats) of classifier C_clf on encoding z_code;
      ``disent/entropy_ratio/<clf>/<code>`` the same over log K_clf (1 = uniform: the attribute is absent);
      ``disent/entropy_ratio/own`` / ``…/other`` the means over code = clf / code ≠ clf (z_0 included in other).
    - ``disent/accuracy/<clf>/<code>``: accuracy of C_clf on z_code against the true clf labels.
    - ``disent/hopkins/<attr>``: mean over the classes of attr (with ≥ ``hopkins_min_points`` images) of the
      Hopkins statistic of z_attr within the class, after projecting the class's codes on their top
      ``hopkins_dims`` principal axes (0 or None: the raw codes).
    - ``disent/num_images``.

    With ``out_dir``, writes ``disentanglement_tsne.png`` (t-SNE of up to ``tsne_points`` encodings; one row per
    code, one panel per attribute colouring; ``tsne_points=0`` skips it)."""
    if not all(hasattr(module, k) for k in ("attributes", "code_names", "encode", "code_logits", "labels_of")):
        raise ConfigError("disentanglement_report needs a method=disent module (attribute encoders and classifiers).")
    codes, labels, ent, correct, n = collect_codes(module, loader, max_images, project_dims, seed)
    attrs = list(module.attributes)
    metrics: dict[str, float] = {"disent/num_images": float(n)}
    own, other = [], []
    for (a, c), e in ent.items():
        ratio = float(e.mean()) / math.log(module.num_classes[a])
        metrics[f"disent/entropy/{a}/{c}"] = float(e.mean())
        metrics[f"disent/entropy_ratio/{a}/{c}"] = ratio
        metrics[f"disent/accuracy/{a}/{c}"] = float(correct[(a, c)].nanmean())  # NaN: only unseen subjects
        (own if a == c else other).append(ratio)
    metrics["disent/entropy_ratio/own"] = float(np.mean(own))
    metrics["disent/entropy_ratio/other"] = float(np.mean(other)) if other else math.nan
    for i, a in enumerate(attrs):
        values = []
        for k in labels[a].unique().tolist():
            if k == UNSEEN_CLASS:  # held-out subjects are no class (and not one cluster)
                continue
            pts = codes[a][labels[a] == k]
            if pts.shape[0] < max(hopkins_min_points, 3):
                continue
            if hopkins_dims:
                pts = pca_project(pts, hopkins_dims)
            h = hopkins_statistic(pts, seed=seed + 31 * i + int(k))
            if not math.isnan(h):
                values.append(h)
        metrics[f"disent/hopkins/{a}"] = float(np.mean(values)) if values else math.nan
    if out_dir is not None and tsne_points and n >= 4:
        write_tsne_png(Path(out_dir) / TSNE_FILE, codes, labels, module, tsne_points, tsne_iterations, perplexity, seed)
    return metrics


def write_tsne_png(
    path: Path,
    codes: Mapping[str, Tensor],
    labels: Mapping[str, Tensor],
    module: Any,
    points: int = 500,
    iterations: int = 500,
    perplexity: float = 30.0,
    seed: int = 0,
) -> Path:
    """t-SNE of each code of the same ``points`` images; a row per code, a panel per attribute colouring."""
    n = next(iter(codes.values())).shape[0]
    gen = torch.Generator().manual_seed(int(seed))
    idx = torch.randperm(n, generator=gen)[: min(points, n)]
    values = (getattr(module, "data_info", None) or {}).get("factor_values", {})
    attrs = list(module.attributes)
    panels = []
    for name in module.code_names:
        xy = tsne(codes[name][idx], perplexity=perplexity, iterations=iterations, seed=seed)
        for a in attrs:
            names = list(values.get(a) or [str(k) for k in range(module.num_classes[a])])
            lab = labels[a][idx].numpy().copy()
            if (lab == UNSEEN_CLASS).any():  # held-out subjects share one colour after the classes
                lab[lab == UNSEEN_CLASS] = len(names)
                names.append("unseen")
            panels.append({"title": f"z_{name} by {a}", "coords": xy, "labels": lab, "names": names})
    return save_scatter_png(path, panels, columns=len(attrs))
