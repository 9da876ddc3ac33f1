"""Sweeps that optimise (``python train.py -m hparams_search=<name>``, conf/hparams_search/): the objective a run
returns to Hydra's Optuna sweeper and the study summary written next to the sweep's jobs.

- ``objective: val/<metric>`` (train.yaml) names the in-training validation metric
  (:class:`~suite.callbacks.Validation`) that :func:`suite.training.train` returns as ``result["objective"]`` and
  train.py returns to the sweeper: its value at the run's last validation (when training ends). The sweeper's
  direction follows the metric (``${objective_direction:${objective}}``: ``minimize`` for FID/KID/errors,
  ``maximize`` for accuracies, PSNR, SSIM, IoU — :func:`~suite.callbacks.validation.metric_mode`).
- A trial fails — and the sweep goes on — when its run raises (a suite error, a divergence, an out-of-memory) or
  its objective is NaN or infinite; Optuna records it as ``FAIL`` (``hydra.sweeper.max_failure_rate: 1.0`` in the
  search configs keeps the sweeper from stopping at the first failure).
- :class:`StudySummary` (a Hydra callback the search configs add) writes ``<job dir>/trial.json`` when each job
  ends and rewrites ``<sweep dir>/optuna_summary.json`` and ``optuna_summary.md`` from all of them: each trial's
  number, parameters, value, state (``COMPLETE`` / ``FAIL``, Optuna's rule: a run that raised or a non-finite
  value fails) and error, and the best trial. It is rewritten after every job, so a sweep that ends early still
  leaves the trials it ran. Optuna's own ``optimization_results.yaml`` (best parameters and value) is written by
  the sweeper when the sweep ends.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from suite.errors import ConfigError

TRIAL_FILE = "trial.json"
SUMMARY = "optuna_summary"


def objective_direction(metric: str) -> str:
    """``${objective_direction:val/psnr_gt}`` → ``maximize``: Optuna's direction for a ``val/*`` metric."""
    from suite.callbacks.validation import metric_mode

    return "minimize" if metric_mode(str(metric)) == "min" else "maximize"


def runs_validation(validation: Any) -> bool:
    """Whether a run with this ``Validation`` callback (or None) validates during training: what ``objective`` and
    ``evaluate_checkpoint=best`` both need before training starts. (Kept here, free of Lightning imports: the CLI
    imports this module before it quiets Lightning's logging.)"""
    return validation is not None and bool(validation.every)


def check_objective(metric: Any, validation: Any, val_every: Any) -> None:
    """Before training: ``objective`` must name a ``val/*`` metric and the run must validate."""
    if not isinstance(metric, str) or not metric.startswith("val/"):
        raise ConfigError(f"objective must name an in-training validation metric (val/psnr_gt, val/accuracy_target, "
                          f"val/fid_classifier …) or be null, got {metric!r}.")
    if not runs_validation(validation):
        raise ConfigError(f"objective={metric} needs the in-training validation: keep callbacks.validation and set "
                          f"val_every to a positive number of iterations (got {val_every}).")


def objective_value(metric: str, validation: Any, iteration: int) -> float:
    """The value of ``metric`` at the run's last validation (NaN/inf are returned as they are: the sweeper records
    such a trial as failed)."""
    if validation.latest_iteration < 0:
        raise ConfigError(f"no validation ran before training ended at iteration {iteration}, so objective={metric} "
                          f"has no value; set val_every to at most the run's iterations.")
    if metric not in validation.latest:
        reported = ", ".join(sorted(k for k in validation.latest if k != "val/seconds")) or "none"
        raise ConfigError(f"objective={metric} is not among this run's validation metrics ({reported}); choose one "
                          "of them.")
    return float(validation.latest[metric])


# ---------------------------------------------------------------------------------------------- study summary
def _parse(value: str) -> Any:
    """An override's value as YAML reads it (``3.5`` → 3.5, ``true`` → True), else the string."""
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError:
        return value


def trial_record(config: DictConfig, job_return: Any) -> dict[str, Any]:
    """What one job contributed to the study: its number, the searched parameters' values, its value and state."""
    from hydra.core.utils import JobStatus

    searched = set((OmegaConf.select(config, "hydra.sweeper.params") or {}).keys())
    overrides = {}
    for override in job_return.overrides or []:
        key, _, value = str(override).partition("=")
        overrides[key.lstrip("+~")] = _parse(value)
    params = {k: v for k, v in overrides.items() if k in searched}
    value, error = None, None
    if job_return.status == JobStatus.COMPLETED:
        raw = job_return._return_value
        try:
            value = float(raw)
        except (TypeError, ValueError):
            error = f"the run returned {raw!r}, not a number (stopped by a signal, or objective unset)"
        else:
            if not math.isfinite(value):
                error = f"the objective is {value}"
    else:
        exc = job_return._return_value
        error = f"{type(exc).__name__}: {exc}"
    return {
        "number": int(OmegaConf.select(config, "hydra.job.num", default=0) or 0),
        "params": params,
        "overrides": overrides,
        "value": value if value is not None and math.isfinite(value) else None,
        "state": "FAIL" if error else "COMPLETE",
        "error": error,
        "run_dir": str(OmegaConf.select(config, "hydra.runtime.output_dir", default="")),
    }


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_summary(sweep_dir: str | Path, metric: str | None, direction: str) -> dict[str, Any]:
    """``<sweep dir>/optuna_summary.{json,md}`` from every ``<job dir>/trial.json`` under ``sweep_dir``."""
    sweep_dir = Path(sweep_dir)
    trials = []
    for path in sweep_dir.glob(f"*/{TRIAL_FILE}"):
        try:
            trials.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError):
            continue  # a job writing its record right now; the next rewrite reads it
    trials.sort(key=lambda t: t["number"])
    # A parameter is what the sweeper's params name, or an override that differs between trials (a sweep given on
    # the command line: `data.batch_size=choice(8,16)`).
    keys = {k for t in trials for k in t.get("overrides", {})}
    varying = {k for k in keys if len({json.dumps(t.get("overrides", {}).get(k)) for t in trials}) > 1}
    for t in trials:
        t["params"] = {**t["params"], **{k: v for k, v in t.get("overrides", {}).items() if k in varying}}
    complete = [t for t in trials if t["state"] == "COMPLETE"]
    sign = -1.0 if direction == "maximize" else 1.0
    best = min(complete, key=lambda t: (sign * t["value"], t["number"])) if complete else None
    summary = {"objective": metric, "direction": direction, "n_trials": len(trials), "n_complete": len(complete),
               "n_failed": len(trials) - len(complete), "best": best, "trials": trials}
    _write_atomic(sweep_dir / f"{SUMMARY}.json", json.dumps(summary, indent=2) + "\n")
    _write_atomic(sweep_dir / f"{SUMMARY}.md", summary_markdown(summary))
    return summary


def summary_markdown(summary: dict[str, Any]) -> str:
    """The study as a Markdown table, best trial first line."""
    names = sorted({k for t in summary["trials"] for k in t["params"]})
    best = summary["best"]
    lines = [f"# Optuna study: {summary['objective']} ({summary['direction']})", "",
             f"{summary['n_trials']} trials, {summary['n_complete']} complete, {summary['n_failed']} failed. Best: "
             + (f"trial {best['number']}, {summary['objective']} = {best['value']:.6g}, "
                + ", ".join(f"{k}={v}" for k, v in best["params"].items()) if best else "none (no trial completed)."),
             "", "| trial | " + " | ".join(names) + " | value | state | error |",
             "|---:|" + "---:|" * len(names) + "---:|---|---|"]
    for t in summary["trials"]:
        value = "" if t["value"] is None else f"{t['value']:.6g}"
        cells = [str(t["params"].get(k, "")) for k in names]
        error = (t["error"] or "").replace("|", "/").replace("\n", " ")
        lines.append(f"| {t['number']} | " + " | ".join(cells) + f" | {value} | {t['state']} | {error} |")
    return "\n".join(lines) + "\n"


def _direction(config: DictConfig) -> str:
    direction = OmegaConf.select(config, "hydra.sweeper.direction")
    if direction is None:
        return objective_direction(config.get("objective") or "")
    return str(getattr(direction, "name", direction))


class StudySummary(Callback):
    """Hydra callback (``hydra.callbacks.study_summary`` in conf/hparams_search/): after each job, its
    ``trial.json`` and the rewritten ``optuna_summary.{json,md}``; once more when the sweep ends."""

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        record = trial_record(config, job_return)
        run_dir = Path(record["run_dir"])
        run_dir.mkdir(parents=True, exist_ok=True)
        _write_atomic(run_dir / TRIAL_FILE, json.dumps(record, indent=2) + "\n")
        write_summary(config.hydra.sweep.dir, config.get("objective"), _direction(config))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if Path(config.hydra.sweep.dir).is_dir():
            write_summary(config.hydra.sweep.dir, config.get("objective"), _direction(config))
