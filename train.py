"""Train a method: ``python train.py [method=…] [data=…] [trainer=…] [logger=…] [experiment=…] [key=value …]``.

``python train.py experiment=aggan_synth`` is the demo (AGGAN, neutral → happy on the embedded faces, CPU scale:
``make demo``); ``python train.py`` alone trains AGGAN on the embedded faces at paper scale. See README.md for the
command-line contract.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from suite.config import register_resolvers
from suite.errors import SuiteError


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    from suite.training import redact_hydra_files, train

    register_resolvers()  # a launcher's worker (submitit) runs main() without this script's __main__ block
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.output_subdir:
        redact_hydra_files(Path(hydra_cfg.runtime.output_dir) / hydra_cfg.output_subdir)
    try:
        result = train(cfg)
    except SuiteError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    if result.get("stop_signal") is not None:
        print(f"stopped by signal {result['stop_signal']} after {result['iteration']} iterations; resume with "
              f"ckpt_path={result['checkpoint']}")
        return  # exit status 0: the run ended cleanly with its checkpoint written
    print(f"trained {result['iteration']} iterations; checkpoint: {result['checkpoint']}")
    if cfg.get("evaluate_after"):
        from suite.evaluation import evaluate_checkpoint, metrics_table

        out_dir = result["run_dir"] / "eval"
        try:
            metrics = evaluate_checkpoint(result["checkpoint"], out_dir)
        except SuiteError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        print(metrics_table({f"{cfg.method.name} on {cfg.data.name}": metrics}))
        print(f"metrics: {out_dir / 'metrics.json'}")
        print(f"sample grid: {out_dir / 'grid.png'}")


if __name__ == "__main__":
    register_resolvers()  # before Hydra composes, so `--cfg job --resolve` can print `${scaled:…}` values
    main()
