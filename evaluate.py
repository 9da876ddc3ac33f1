"""Evaluate a checkpoint: ``python evaluate.py ckpt_path=<run>/checkpoints/last.ckpt [out_dir=<dir>]``.

Writes ``<out_dir>/metrics.json``, ``metrics.md`` and ``grid.png``; prints the table.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig, OmegaConf

import suite.config  # noqa: F401
from suite.errors import SuiteError


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    from suite.evaluation import evaluate_checkpoint, metrics_table

    try:
        metrics = evaluate_checkpoint(
            cfg.ckpt_path,
            cfg.out_dir,
            batch_size=cfg.batch_size,
            max_images=cfg.max_images,
            device=cfg.device,
            num_grid=cfg.num_grid,
            classifier=OmegaConf.to_container(cfg.classifier, resolve=True),
            split=cfg.split,
        )
    except SuiteError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    print(metrics_table({str(cfg.ckpt_path): metrics}))


if __name__ == "__main__":
    main()
