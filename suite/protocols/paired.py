"""PSNR and MSE of translations against paired real targets (AGGAN Table I/II), and checking what a checkpoint is.

A datamodule with paired data yields ``gt`` in its test batches: BU-3DFE and AR Face the same subject's real
image with the target expression (``pair_key``), the embedded faces the rendered true counterfactual. Any
datamodule that yields ``gt`` works here; one without (CelebA) gives no score.

How the numbers are computed. The authors' released code has no PSNR/MSE script: ``test.py`` of
``Ha0Tang/AttentionGAN`` saves ``fake_B`` and ``real_B`` as PNG files with ``torchvision.utils.save_image`` (8-bit,
``x·0.5 + 0.5`` then ``floor(255·x + 0.5)``), and Table I's MSE magnitudes (574.5 … 27516.2) only fit a 0..255
scale. So, by default (``eight_bit``), both images are taken to those 8-bit levels (:func:`metrics.image_quality.
to_8bit`), and PSNR = ``10·log10(255² / MSE)`` and MSE (0..255 units) are computed per image and averaged over
the test split [inferred: the paper gives no formula; per-image averaging fits Table I, where 10·log10(255²/574.5)
= 20.5 dB is below the 21.32 dB reported]. ``eight_bit=false``: the same on the float images (PSNR is
scale-free; MSE scaled to 0..255).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from metrics.image_quality import mse, mse_255, psnr, to_8bit
from metrics.streaming import MetricBook
from suite.checkpoints import read_checkpoint
from suite.comparison import row_label
from suite.errors import CheckpointError
from suite.protocols.base import EvalSettings


@dataclass(frozen=True)
class CheckpointFacts:
    """What a protocol needs to know of a checkpoint before scoring it."""

    path: Path
    method: str
    label: str  # row_label: the method and its switched ablation flags, e.g. "aggan −AD −PL"
    dataset: str
    config: dict[str, Any]

    @property
    def removed(self) -> frozenset[str]:
        """The components switched off (``−X`` in the label), e.g. {"AD", "PL"}."""
        return frozenset(t[1:] for t in self.label.split()[1:] if t.startswith("−"))

    @property
    def added(self) -> frozenset[str]:
        return frozenset(t[1:] for t in self.label.split()[1:] if t.startswith("+"))


def checkpoint_facts(path: str | Path, protocol: str, methods: Iterable[str]) -> CheckpointFacts:
    """Read a checkpoint's method, ablation label and dataset; CheckpointError (one sentence) when ``protocol``
    does not score that method."""
    methods = tuple(methods)
    state = read_checkpoint(path)["suite"]
    method = str(state.get("method"))
    if method not in methods:
        raise CheckpointError(
            f"protocol={protocol} scores checkpoints of {', '.join(methods)}, but {path} was trained with method={method}.")
    config = state.get("config") or {}
    dataset = (state.get("data_info") or {}).get("name") or (config.get("data") or {}).get("name") or "data"
    return CheckpointFacts(Path(path), method, row_label(config), str(dataset), config)


def pair_scores(pred: torch.Tensor, target: torch.Tensor, eight_bit: bool = True) -> dict[str, torch.Tensor]:
    """Per-image ``psnr`` (dB) and ``mse`` (0..255 units) of B×C×H×W images in [-1, 1] (see the module docstring)."""
    if eight_bit:
        a, b = to_8bit(pred), to_8bit(target)
        return {"psnr": psnr(a, b, data_range=255.0), "mse": mse(a, b)}
    return {"psnr": psnr(pred, target), "mse": mse_255(pred, target)}


@dataclass(frozen=True)
class PairedScores:
    """Means over the split: the translation against the target image, and the input against it (doing nothing)."""

    psnr: float
    mse: float
    psnr_input: float
    mse_input: float
    num_images: int


def translated_batches(path: str | Path, settings: EvalSettings) -> Iterator[tuple[torch.Tensor, dict[str, Any]]]:
    """(G(x) clamped to [-1, 1], the batch on the device) over the checkpoint's test (or val) split, up to
    ``settings.max_images`` images; the translation under ``no_grad`` and the settings' precision."""
    from suite.evaluation import autocast_dtype, autocast_method, load_checkpoint_run, resolve_device

    dev = resolve_device(settings.device)
    module, dm, _ = load_checkpoint_run(path, dev)
    autocast_method(module, dev, autocast_dtype(settings.precision))
    dm.batch_size = settings.batch_size
    dm.setup("test")
    loader = dm.test_dataloader() if settings.split == "test" else dm.val_dataloader()
    seen = 0
    with torch.no_grad():
        for batch in loader:
            if settings.max_images is not None and seen >= settings.max_images:
                return
            batch = {k: (v.to(dev) if torch.is_tensor(v) else v) for k, v in batch.items()}
            fake = module.translate(batch["image"], module.sample_target(batch))["image"].float().clamp(-1, 1)
            seen += batch["image"].shape[0]
            yield fake, batch


def paired_scores(path: str | Path, settings: EvalSettings) -> PairedScores | None:
    """Translate the checkpoint's test (or val) split and score it against ``gt``; None when batches carry no ``gt``."""
    book, seen = MetricBook(), 0
    for fake, batch in translated_batches(path, settings):
        if batch.get("gt") is None:
            return None
        gt = batch["gt"].float()
        book.update(pair_scores(fake, gt, settings.eight_bit))
        book.update({f"{k}_input": v for k, v in pair_scores(batch["image"].float(), gt, settings.eight_bit).items()})
        seen += batch["image"].shape[0]
    if not seen:
        return None
    means = book.means()
    return PairedScores(means["psnr"], means["mse"], means["psnr_input"], means["mse_input"], seen)
