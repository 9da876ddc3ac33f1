"""Train a method: ``python train.py [method=…] [data=…] [trainer=…] [logger=…] [experiment=…] [key=value …]``.

``python train.py experiment=aggan_synth`` is the demo (AGGAN, neutral → happy on the embedded faces, CPU scale:
``make demo``); ``python train.py`` alone trains AGGAN on the embedded faces at paper scale. See README.md for the
command-line contract.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from suite.config import register_resolvers
from suite.errors import ConfigError, DivergenceError, SuiteError


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """One run; returns ``cfg.objective``'s value (a sweep's objective: suite/sweeps.py), or None."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from suite.training import redact_hydra_files, train

    register_resolvers()  # a launcher's worker (submitit) runs main() without this script's __main__ block
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.output_subdir:
        redact_hydra_files(Path(hydra_cfg.runtime.output_dir) / hydra_cfg.output_subdir)
    optimising = cfg.get("objective") is not None and hydra_cfg.mode == RunMode.MULTIRUN
    try:
        result = train(cfg)
        if optimising:
            check_finite(cfg.objective, result)
    except SuiteError as err:
        fail(err, optimising)
    if result.get("stop_signal") is not None:
        print(f"stopped by signal {result['stop_signal']} after {result['iteration']} iterations; resume with "
              f"ckpt_path={result['checkpoint']}")
        return None  # exit status 0: the run ended cleanly with its checkpoint written
    print(f"trained {result['iteration']} iterations; checkpoint: {result['checkpoint']}")
    if result.get("objective") is not None:
        print(f"objective {cfg.objective} = {result['objective']:.6g}")
    if cfg.get("evaluate_after"):
        from suite.evaluation import evaluate_checkpoint, metrics_table
        from suite.training import evaluated_checkpoint

        out_dir = result["run_dir"] / "eval"
        scored = evaluated_checkpoint(result, cfg.get("evaluate_checkpoint", "last"))
        print(f"evaluating {scored}")
        try:
            metrics = evaluate_checkpoint(scored, out_dir)
        except SuiteError as err:
            fail(err, optimising)
        print(metrics_table({f"{cfg.method.name} on {cfg.data.name}": metrics}))
        print(f"metrics: {out_dir / 'metrics.json'}")
        print(f"sample grid: {out_dir / 'grid.png'}")
    return result.get("objective")


def check_finite(metric: str, result: dict) -> None:
    """A sweep's trial fails by raising: Optuna's sweeper cannot take a NaN/inf (or missing) value."""
    value = result.get("objective")
    if result.get("stop_signal") is not None:
        return  # the sweeper records a stopped trial (no value) as failed
    if value is None:
        raise ConfigError(f"objective {metric} has no value after {result['iteration']} iterations (a "
                          "trainer.fast_dev_run has no validation); the trial is recorded as failed.")
    if not math.isfinite(value):
        raise DivergenceError(f"objective {metric} is {value} after {result['iteration']} iterations; the trial "
                              "is recorded as failed.")


def fail(err: SuiteError, optimising: bool) -> None:
    """The suite's one sentence, then exit status 2; in an optimising sweep the error is raised instead, so the
    sweeper records the trial as failed and goes on (suite/sweeps.py)."""
    print(f"error: {err}", file=sys.stderr)
    if optimising:
        raise err
    sys.exit(2)


if __name__ == "__main__":
    register_resolvers()  # before Hydra composes, so `--cfg job --resolve` can print `${scaled:…}` values
    main()
