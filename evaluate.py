"""Evaluate checkpoints.

- ``python evaluate.py ckpt_path=<run>/checkpoints/last.ckpt [out_dir=<dir>] [fid.feature=classifier|inception|none]``
  writes ``<out_dir>/metrics.json``, ``metrics.md`` and ``grid.png`` and prints the table;
- ``python evaluate.py ckpt_paths=[a.ckpt,b.ckpt]`` evaluates each (out_dir: ``<out_dir>/<i>`` or beside each
  checkpoint) and writes one comparison table, ``<table_dir>/comparison.md`` (a row per checkpoint);
- ``python evaluate.py -m ckpt_path=a.ckpt,b.ckpt`` does the same with one Hydra job per checkpoint: each job
  adds its row under ``table_dir`` and rewrites the table, so the last job leaves the full one.

- ``python evaluate.py protocol=<name> ckpt_paths=[a.ckpt,b.ckpt] out_dir=<dir>`` (or ``ckpt_path=``; none for a
  table that needs no checkpoint, e.g. ``protocol=aggan_table3``) writes ``<dir>/<name>.md``: a paper's table in
  its row/column layout, the published figures beside ours (``suite.protocols``; out_dir default: table_dir).

The comparison table is also logged to W&B (``wandb.mode``: auto = online with credentials, else offline;
``disabled`` turns it off; ``WANDB_MODE`` wins). ``precision=bf16`` runs the method's networks under bf16
autocast on the evaluation device (metrics stay float32).
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from suite.errors import ConfigError, SuiteError


def checkpoint_paths(cfg: DictConfig) -> list[str]:
    """``cfg.ckpt_path`` (if set) followed by ``cfg.ckpt_paths``."""
    paths = list(cfg.get("ckpt_paths") or [])
    return [cfg.ckpt_path, *paths] if cfg.get("ckpt_path") else paths


def checked_wandb_cfg(cfg: DictConfig) -> dict | None:
    """``cfg.wandb`` as a dict (None when unset); a typo in ``wandb.mode`` stops us now, before any work."""
    from suite.loggers import wandb_mode

    wandb_cfg = OmegaConf.to_container(cfg.wandb, resolve=True) if cfg.get("wandb") else None
    wandb_mode(str((wandb_cfg or {}).get("mode") or "disabled"), option="wandb.mode")
    return wandb_cfg  # type: ignore[return-value]


def run_protocol(cfg: DictConfig) -> Path:
    """Compute the paper table ``cfg.protocol`` on the checkpoints; returns the written ``<out_dir>/<name>.md``."""
    from suite import protocols

    wandb_cfg = checked_wandb_cfg(cfg)
    settings = protocols.EvalSettings(device=str(cfg.device), batch_size=int(cfg.batch_size), max_images=cfg.max_images,
                                      split=str(cfg.split), precision=str(cfg.get("precision", "32")),
                                      eight_bit=bool(cfg.get("protocol_8bit", True)),
                                      options=OmegaConf.to_container(OmegaConf.create({
                                          "classifier": cfg.get("classifier"), "fid": cfg.get("fid"),
                                          **(cfg.get("protocol_options") or {})}), resolve=True))
    out_dir = cfg.get("out_dir") or cfg.get("table_dir") or "eval_tables"
    return protocols.run_protocol(str(cfg.protocol), checkpoint_paths(cfg), out_dir, settings, wandb_cfg)


def run(cfg: DictConfig) -> dict[str, dict[str, float]]:
    """Evaluate ``cfg.ckpt_path`` or every checkpoint of ``cfg.ckpt_paths``; returns ``{label: metrics}``."""
    from suite.checkpoints import read_checkpoint
    from suite.comparison import add_row, log_comparison, row_label
    from suite.evaluation import evaluate_checkpoint

    paths = checkpoint_paths(cfg)
    if not paths:
        raise ConfigError("pass ckpt_path=<run>/checkpoints/last.ckpt (or ckpt_paths=[a.ckpt,b.ckpt]).")
    wandb_cfg = checked_wandb_cfg(cfg)
    results: dict[str, dict[str, float]] = {}
    for i, path in enumerate(paths):
        out_dir = cfg.out_dir if len(paths) == 1 or not cfg.out_dir else Path(cfg.out_dir) / str(i)
        metrics = evaluate_checkpoint(
            path,
            out_dir,
            batch_size=cfg.batch_size,
            max_images=cfg.max_images,
            device=cfg.device,
            num_grid=cfg.num_grid,
            classifier=OmegaConf.to_container(cfg.classifier, resolve=True),
            split=cfg.split,
            fid=OmegaConf.to_container(cfg.fid, resolve=True) if cfg.get("fid") else None,
            precision=str(cfg.get("precision", "32")),
        )
        label = row_label(read_checkpoint(path)["suite"]["config"], cfg.get("label") if len(paths) == 1 else None)
        if cfg.get("table_dir"):
            table = add_row(cfg.table_dir, path, label, metrics)
            print(f"comparison table: {table}")
        results[label if label not in results else f"{label} ({path})"] = metrics
    if cfg.get("table_dir"):
        log_comparison(cfg.table_dir, wandb_cfg)  # once, with every row (a multirun job: the rows so far)
    return results


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    from suite.evaluation import metrics_table

    try:
        if cfg.get("protocol"):
            table = run_protocol(cfg)
            print(table.read_text() + f"\nwrote {table}")
            return
        results = run(cfg)
    except SuiteError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    print(metrics_table(results))


if __name__ == "__main__":
    main()
