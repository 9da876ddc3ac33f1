"""Evaluate a checkpoint: rebuild its method and data from the checkpoint alone, translate the test split,
stream the metrics, write ``metrics.json`` (flat name → number), ``metrics.md`` and a sample grid.

Metrics on the embedded data (where the true counterfactual exists):
- ``accuracy_target``: fraction of translated images the evaluation classifier (trained on the real training
  split, cached) assigns to the target; ``accuracy_real`` is the same classifier on real test images.
- ``psnr_gt`` / ``ssim_gt`` / ``mse_gt``: translation vs the true counterfactual; ``psnr_input``: the untouched
  input vs the truth (the do-nothing baseline).
- ``mask_iou`` (methods with an attention mask) vs the true change region; ``background_l1``: mean |output −
  input| outside the true change region.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import torch
from lightning_utilities.core.apply_func import apply_to_collection
from omegaconf import OmegaConf

from lightning_modules.samples import save_motion_combination_grid, save_sample_grid
from metrics.eval_classifier import get_or_train_eval_classifier
from metrics.image_quality import mse_255, psnr, ssim
from metrics.masks import background_preservation, mask_iou
from metrics.streaming import MetricBook
from suite.errors import ConfigError
from suite.training import build_datamodule

log = logging.getLogger(__name__)


def load_checkpoint_run(ckpt_path: str | Path, device: torch.device | str = "cpu"):
    """(module in eval mode on ``device``, datamodule, checkpoint dict) rebuilt from the checkpoint alone: the
    module as ``suite.inference.load_module`` loads it, plus the run's datamodule (its data must be here)."""
    from suite.inference import load_module

    module, ckpt = load_module(ckpt_path, device)
    run_cfg = OmegaConf.create(ckpt["suite"]["config"])
    return module, build_datamodule(run_cfg, run_cfg.method.view), ckpt


class TargetLabels:
    """Which label the evaluation classifier learns and which label a translation should have.

    - domain views: ``domain`` of ``image`` and ``ref_domain`` of ``ref``; the target is ``batch['target']``.
    - multi_factor view: one factor (``expression`` when modelled), from ``factors`` and ``ref_factors``; the
      target is the reference's value (evaluation swaps that code from the reference).
    """

    def __init__(self, info: dict, source_key, ref_key, target_fn):
        self.info, self._source, self._ref, self.target = info, source_key, ref_key, target_fn

    @classmethod
    def for_run(cls, info: dict, module) -> TargetLabels | None:
        if info.get("view") in ("two_domain", "multi_domain"):
            return cls(info, lambda b: b["domain"], lambda b: b.get("ref_domain"), lambda b: b["target"])
        modelled = info.get("factor_names", []) if info.get("view") == "multi_factor" else []
        factor = "expression" if "expression" in modelled else None
        if factor is None:
            return None
        values = info["factor_values"][factor]
        clf_info = {**info, "domain_names": [f"{factor}={v}" for v in values], "num_domains": len(values)}
        return cls(
            clf_info,
            lambda b: b["factors"][factor],
            lambda b: b.get("ref_factors", {}).get(factor),
            lambda b: b["ref_factors"][factor],
        )

    def loader(self, loader_fn):
        """A loader factory whose batches hold every real image with its label: ``image`` and ``ref``."""

        def make():
            for batch in loader_fn():
                images, labels = [batch["image"]], [self._source(batch)]
                if "ref" in batch and self._ref(batch) is not None:
                    images.append(batch["ref"])
                    labels.append(self._ref(batch))
                yield {"image": torch.cat(images), "domain": torch.cat(labels)}

        return make


def resolve_device(name: str) -> torch.device:
    """``auto`` → cuda when available, else cpu; any other name as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


# evaluate.yaml's ``precision`` (Lightning's spellings accepted too) → autocast dtype (None: plain float32)
PRECISIONS: dict[str, torch.dtype | None] = {
    "32": None, "32-true": None, "fp32": None, "bf16": torch.bfloat16, "bf16-mixed": torch.bfloat16,
}


def autocast_dtype(precision: str | int) -> torch.dtype | None:
    """The autocast dtype of an evaluation ``precision`` (None for float32); ConfigError for anything else."""
    key = str(precision)
    if key not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {key!r}.")
    return PRECISIONS[key]


def _autocast_call(fn, device_type: str, dtype: torch.dtype):
    def call(*args: Any, **kwargs: Any) -> Any:
        with torch.autocast(device_type, dtype=dtype):
            out = fn(*args, **kwargs)
        return apply_to_collection(out, torch.Tensor, lambda t: t.float() if t.is_floating_point() else t)

    return call


def autocast_method(module: torch.nn.Module, device: torch.device, dtype: torch.dtype | None) -> None:
    """Run ``module.translate`` under ``torch.autocast(device.type, dtype)`` and hand back float32, so everything
    computed from a translation (classifier accuracy, FID features, PSNR …, the disent and bridge reports,
    grids) stays in float32. An instance attribute shadows the method, for a module that is evaluated and then
    dropped; nothing changes when ``dtype`` is None."""
    if dtype is None:
        return
    module.translate = _autocast_call(module.translate, device.type, dtype)


def target_classifier(labels: TargetLabels, dm: Any, cfg: dict, device: torch.device):
    """The evaluation classifier of ``labels`` (cached under one key, so evaluate.py and in-training validation
    share it): trained on the train split's images and references, checked on the test split."""
    return get_or_train_eval_classifier(
        labels.info,
        labels.loader(dm.train_dataloader),
        cfg["cache_dir"],
        arch=cfg["arch"],
        epochs=cfg["epochs"],
        device=device,
        test_loader_fn=labels.loader(dm.test_dataloader),
        split="train:image+ref",
        task="domain",
        use_ref=False,  # TargetLabels already puts the ref images into each batch
    )


def image_metrics(batch: dict, out: dict, fake: torch.Tensor, baselines: bool = False) -> dict[str, torch.Tensor]:
    """Per-image metrics that need no classifier, where the batch and the method provide what they compare:
    PSNR/SSIM to the ground truth, the attention mask's IoU with the true change region and the change outside
    it; with ``baselines`` also the untouched input's PSNR (``psnr_input``) and MSE on 0–255 (``mse_gt``)."""
    found: dict[str, torch.Tensor] = {}
    if batch.get("gt") is not None:
        gt = batch["gt"].float()
        found["psnr_gt"] = psnr(fake, gt)
        if baselines:
            found["psnr_input"] = psnr(batch["image"].float(), gt)
        found["ssim_gt"] = ssim(fake, gt)
        if baselines:
            found["mse_gt"] = mse_255(fake, gt)
    if batch.get("change_mask") is not None:
        found["background_l1"] = background_preservation(fake, batch["image"].float(), batch["change_mask"])
        if out.get("mask") is not None:
            found["mask_iou"] = mask_iou(out["mask"].float(), batch["change_mask"])
    return found


def evaluate_checkpoint(
    ckpt_path: str | Path,
    out_dir: str | Path | None = None,
    *,
    batch_size: int = 64,
    max_images: int | None = None,
    device: str = "auto",
    num_grid: int = 16,
    classifier: dict | None = None,
    split: str = "test",
    fid: dict | None = None,
    precision: str | int = "32",
) -> dict[str, float]:
    """Compute the metrics of one checkpoint and write them under ``out_dir``; returns the flat metrics.

    ``precision``: ``32``, or ``bf16`` for the method's translations under autocast on ``device`` (see
    :func:`autocast_method`; bf16 halves activation memory and uses a GPU's tensor cores)."""
    dtype = autocast_dtype(precision)
    dev = resolve_device(device)
    if (fid or {}).get("feature") == "inception":
        from metrics.fid import inception_weights_path

        inception_weights_path()  # fail before any work when the weights are not in the local cache
    ckpt_path = Path(ckpt_path)
    out_dir = Path(out_dir) if out_dir else ckpt_path.parent.parent / "eval"
    module, dm, ckpt = load_checkpoint_run(ckpt_path, dev)
    autocast_method(module, dev, dtype)
    dm.batch_size = batch_size
    dm.setup("test")
    loader = dm.test_dataloader() if split == "test" else dm.val_dataloader()
    info = dm.info
    clf_cfg = {"arch": "small", "epochs": 5, "cache_dir": None, **(classifier or {})}
    target_labels = TargetLabels.for_run(info, module)
    evaluator = None
    if target_labels is not None:
        dm.setup("fit")
        evaluator = target_classifier(target_labels, dm, clf_cfg, dev)
    attr_clf = None
    if info.get("view") == "multi_attribute" and hasattr(module, "sample_target"):
        dm.setup("fit")
        attr_clf = get_or_train_eval_classifier(
            info, dm.train_dataloader, clf_cfg["cache_dir"], task="multilabel", arch=clf_cfg["arch"],
            epochs=clf_cfg["epochs"], device=dev, test_loader_fn=dm.test_dataloader,
        )
    fid_cfg = {"feature": "classifier", "kid": True, **(fid or {})}
    fidkid = _build_fidkid(fid_cfg, evaluator or attr_clf, info, split, max_images, batch_size, clf_cfg, dev)
    book = MetricBook()
    grid_batch: dict[str, torch.Tensor] | None = None
    seen = 0
    for batch in loader:
        if max_images is not None and seen >= max_images:
            break
        batch = {k: (v.to(dev) if torch.is_tensor(v) else v) for k, v in batch.items()}
        out = module.translate(batch["image"], module.sample_target(batch))
        fake = out["image"].float().clamp(-1, 1)
        per_image: dict[str, torch.Tensor] = {}
        if evaluator is not None:
            per_image["accuracy_target"] = evaluator.accuracy(fake, target_labels.target(batch)).float()
        per_image.update(image_metrics(batch, out, fake, baselines=True))
        book.update(per_image)
        if fidkid is not None:
            fidkid.update_real(batch["ref"] if torch.is_tensor(batch.get("ref")) else batch["image"])
            fidkid.update_fake(fake)
        if grid_batch is None:
            grid_batch = {k: v[:num_grid].cpu() for k, v in batch.items() if torch.is_tensor(v)}
            grid_out = {k: v[:num_grid].cpu() for k, v in out.items() if torch.is_tensor(v)}
        seen += batch["image"].shape[0]
    metrics = book.means()
    if evaluator is not None and evaluator.real_accuracy is not None:
        metrics["accuracy_real"] = evaluator.real_accuracy
    metrics["num_images"] = float(seen)
    metrics["iteration"] = float(ckpt["suite"]["iteration"])
    if fidkid is not None:
        fidkid.save_real()
        metrics.update(fidkid.compute())
    out_dir.mkdir(parents=True, exist_ok=True)
    fresh_loader = dm.test_dataloader() if split == "test" else dm.val_dataloader()
    # the method's own report (disent: disentanglement analysis; bridge: both modes' attribute accuracy)
    metrics.update(module.extra_evaluation(fresh_loader, out_dir, max_images=max_images, classifier=evaluator or attr_clf))
    if attr_clf is not None and attr_clf.real_accuracy is not None:
        metrics["accuracy_real"] = attr_clf.real_accuracy
    grid_path = out_dir / "grid.png"
    if grid_batch is not None:
        save_sample_grid(grid_path, grid_batch, grid_out)
        names = list(info.get("domain_names") or [])
        if getattr(module, "use_motion", False) and len(names) >= 3:  # SPM: motion-basis combination (Fig. 7)
            save_motion_combination_grid(out_dir / "motion_combination.png", module,
                                         grid_batch["image"][:8].to(module.device), (1, 2), names)
    (out_dir / "metrics.json").write_text(json.dumps(_json_numbers(metrics), indent=2, sort_keys=True))
    title = f"{ckpt['suite']['method']} on {info.get('name')} ({ckpt_path})"
    (out_dir / "metrics.md").write_text(metrics_table({title: metrics}))
    log.info("wrote %s", out_dir)
    return metrics


def _build_fidkid(fid_cfg: dict, classifier, info: dict, split: str, max_images: int | None, batch_size: int,
                  clf_cfg: dict, dev: torch.device):
    """The streaming FID/KID of ``fid_cfg['feature']`` (None for ``none``, or when no classifier exists)."""
    from metrics.eval_classifier import default_cache_dir
    from metrics.fid import (
        FEATURES,
        INCEPTION_WEIGHTS,
        ClassifierFeatures,
        FidKid,
        inception_extractor,
        real_stats_key,
    )

    feature = str(fid_cfg["feature"])
    if feature not in FEATURES:
        raise ConfigError(f"fid.feature must be one of {', '.join(FEATURES)}, got {feature!r}.")
    if feature == "none":
        return None
    if feature == "classifier":
        if classifier is None:
            log.warning("no evaluation classifier for view %s; fid_classifier skipped", info.get("view"))
            return None
        extractor, extractor_id = ClassifierFeatures(classifier.model), f"evalclf-{classifier.key}"
    else:
        extractor, extractor_id = inception_extractor(), INCEPTION_WEIGHTS
    subset = None if max_images is None else [max_images, batch_size]
    key = real_stats_key(info, split=split, feature=feature, extractor_id=extractor_id, real_source="ref|image",
                         subset=subset)
    cache = Path(clf_cfg["cache_dir"]).expanduser() if clf_cfg.get("cache_dir") else default_cache_dir()
    return FidKid(extractor, feature, kid=bool(fid_cfg.get("kid", True)), cache_path=cache / f"fidreal-{key}.pt",
                  device=dev)


def _json_numbers(metrics: dict[str, float]) -> dict[str, Any]:
    """JSON has no inf/nan: write them as strings "inf"/"nan" so the file stays standard JSON."""
    return {k: (v if math.isfinite(v) else str(v)) for k, v in metrics.items()}


def metrics_table(rows: dict[str, dict[str, float]]) -> str:
    """A markdown table, rows = runs, columns = metrics (the shape of the papers' tables)."""
    columns = sorted({k for r in rows.values() for k in r})
    lines = ["| run | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for name, metrics in rows.items():
        cells = [f"{metrics[c]:.4f}" if c in metrics else "—" for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
