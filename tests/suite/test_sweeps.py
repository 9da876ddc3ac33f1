"""Sweeps that optimise (``suite.sweeps``, conf/hparams_search/): train() returns the chosen validation metric, the
Optuna sweeper runs trials of the example search and the study summary records each one, failed trials included."""

from __future__ import annotations

import json
import logging
import math
import runpy
import sys
import warnings
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf

from suite.errors import ConfigError
from suite.sweeps import StudySummary, objective_direction
from tests.conftest import compose_config
from tests.suite.test_callbacks import NO_CLASSIFIER, TINY, quiet_train

ROOT = Path(__file__).resolve().parents[2]
RUN = [*TINY, "trainer.max_steps=2", "val_every=2", NO_CLASSIFIER, "memory_check=off"]


def test_direction_follows_the_metric():
    assert objective_direction("val/psnr_gt") == "maximize"
    assert objective_direction("val/accuracy_target") == "maximize"
    assert objective_direction("val/fid_classifier") == "minimize"
    assert objective_direction("val/background_l1") == "minimize"


def test_search_config_composes_the_recipe_and_the_sweeper():
    cfg = compose_config(["hparams_search=aggan_synth"])
    assert cfg.objective == "val/psnr_gt" and cfg.method.name == "aggan" and cfg.scale == "synth"
    assert cfg.trainer.max_steps == 2400  # experiment=aggan_synth's recipe


def test_train_returns_the_objective(make_cfg, tmp_path):
    result = quiet_train(make_cfg(*RUN, "objective=val/psnr_gt", run_dir=tmp_path / "a"))
    validation = next(c for c in result["trainer"].callbacks if type(c).__name__ == "Validation")
    assert validation.latest_iteration == 2 and result["objective"] == validation.latest["val/psnr_gt"]
    assert math.isfinite(result["objective"]) and quiet_train(make_cfg(*RUN, run_dir=tmp_path / "b"))["objective"] is None


def test_objective_errors_are_one_sentence(make_cfg, tmp_path):
    with pytest.raises(ConfigError, match=r"objective=val/nope is not among this run's validation metrics \(.*val/psnr_gt"):
        quiet_train(make_cfg(*RUN, "objective=val/nope", run_dir=tmp_path / "a"))
    with pytest.raises(ConfigError, match="objective must name an in-training validation metric"):
        quiet_train(make_cfg(*RUN, "objective=psnr_gt", run_dir=tmp_path / "b"))
    with pytest.raises(ConfigError, match="needs the in-training validation"):
        quiet_train(make_cfg(*RUN, "objective=val/psnr_gt", "val_every=0", run_dir=tmp_path / "c"))
    with pytest.raises(ConfigError, match="no validation ran before training ended at iteration 2"):
        quiet_train(make_cfg(*RUN, "objective=val/psnr_gt", "val_every=3", run_dir=tmp_path / "d"))


def _job(config, status, value):
    ret = JobReturn(overrides=["method.lambda_cycle=3.5", "method.lambda_pixel=0.2", "data.batch_size=2"], status=status)
    ret._return_value = value
    return ret


def test_summary_records_complete_and_failed_trials(tmp_path):
    """Three trials by hand: a complete one, one whose objective is NaN, one that raised; the best is the complete
    one, and the failures carry their reason."""
    callback = StudySummary()
    for number, status, value in [(0, JobStatus.COMPLETED, 12.5), (1, JobStatus.COMPLETED, float("nan")),
                                  (2, JobStatus.FAILED, ConfigError("data.batch_size must be a positive integer."))]:
        config = OmegaConf.create({
            "objective": "val/psnr_gt",
            "hydra": {"sweeper": {"direction": "maximize", "params": {"method.lambda_cycle": "x", "method.lambda_pixel": "y"}},
                      "job": {"num": number}, "runtime": {"output_dir": str(tmp_path / str(number))},
                      "sweep": {"dir": str(tmp_path)}}})
        callback.on_job_end(config, _job(config, status, value))
    summary = json.loads((tmp_path / "optuna_summary.json").read_text())
    assert [t["state"] for t in summary["trials"]] == ["COMPLETE", "FAIL", "FAIL"]
    assert summary["trials"][0]["params"] == {"method.lambda_cycle": 3.5, "method.lambda_pixel": 0.2}
    assert summary["trials"][1]["error"] == "the objective is nan" and summary["trials"][1]["value"] is None
    assert summary["trials"][2]["error"] == "ConfigError: data.batch_size must be a positive integer."
    assert summary["best"]["number"] == 0 and (summary["n_complete"], summary["n_failed"]) == (1, 2)
    assert "| 2 | 3.5 | 0.2 |  | FAIL | ConfigError" in (tmp_path / "optuna_summary.md").read_text()


def sweep(monkeypatch, overrides: list[str]) -> None:
    """``python train.py -m <overrides>`` in this process (train.py run as ``__main__``, as from the shell)."""
    monkeypatch.setattr(sys, "argv", ["train.py", "-m", *overrides])
    monkeypatch.chdir(ROOT)
    saved = _logging_state()  # Hydra's logging configs disable existing loggers: later tests' caplog needs them back
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            runpy.run_path(str(ROOT / "train.py"), run_name="__main__")
    finally:
        GlobalHydra.instance().clear()
        _restore_logging(saved)


def _logging_state() -> dict:
    loggers = {name: lg for name, lg in logging.root.manager.loggerDict.items() if isinstance(lg, logging.Logger)}
    return {"root": (logging.root.level, list(logging.root.handlers)),
            "loggers": {name: (lg.disabled, lg.propagate, lg.level, list(lg.handlers)) for name, lg in loggers.items()}}


def _restore_logging(state: dict) -> None:
    logging.root.setLevel(state["root"][0])
    logging.root.handlers[:] = state["root"][1]
    for name, (disabled, propagate, level, handlers) in state["loggers"].items():
        lg = logging.getLogger(name)
        lg.disabled, lg.propagate, lg.handlers[:] = disabled, propagate, handlers
        lg.setLevel(level)


def test_two_trial_sweep_records_both_objectives(tmp_path, monkeypatch):
    """The example search at tiny size (two trials of two iterations): both trials' objectives are recorded, in the
    summary and in Optuna's own results, and the best is the larger PSNR."""
    monkeypatch.setenv("FACETRANS_CACHE", str(tmp_path / "cache"))
    sweep(monkeypatch, ["hparams_search=aggan_synth", "hydra.sweeper.n_trials=2", f"hydra.sweep.dir={tmp_path / 'sweep'}",
                        "hydra/job_logging=disabled", "hydra/hydra_logging=disabled", "logger=none", "trainer=cpu",
                        "trainer.enable_progress_bar=false", *RUN, "callbacks.validation.num_images=4"])
    summary = json.loads((tmp_path / "sweep" / "optuna_summary.json").read_text())
    assert summary["direction"] == "maximize" and summary["n_trials"] == 2 and summary["n_complete"] == 2
    values = [t["value"] for t in summary["trials"]]
    assert all(math.isfinite(v) for v in values) and summary["best"]["value"] == max(values)
    assert all(set(t["params"]) == {"method.lambda_cycle", "method.lambda_pixel", "method.lambda_gan"}
               for t in summary["trials"])
    assert summary["trials"][0]["params"] != summary["trials"][1]["params"]
    results = OmegaConf.load(tmp_path / "sweep" / "optimization_results.yaml")
    assert results.best_value == pytest.approx(max(values))
    for trial in summary["trials"]:  # each job's own record and its objective line
        assert json.loads((Path(trial["run_dir"]) / "trial.json").read_text())["value"] == trial["value"]


def test_a_failed_trial_does_not_stop_the_sweep(tmp_path, monkeypatch):
    """Two trials in this process, the first made to fail (``trainer.max_steps=${hydra:job.num}``: 0 iterations is
    refused with the suite's sentence): it is recorded as FAIL with that sentence, the second trial still runs and
    completes, and the sweep ends normally."""
    monkeypatch.setenv("FACETRANS_CACHE", str(tmp_path / "cache"))
    run = [o for o in RUN if not o.startswith(("trainer.max_steps=", "val_every="))]
    sweep(monkeypatch, [ "hparams_search=aggan_synth", "hydra.sweeper.n_trials=2", "hydra.sweeper.params=null",
        f"hydra.sweep.dir={tmp_path / 'sweep'}", "hydra/job_logging=disabled", "hydra/hydra_logging=disabled",
        "logger=none", "trainer=cpu", "trainer.enable_progress_bar=false", *run, "callbacks.validation.num_images=4",
        "trainer.max_steps=${hydra:job.num}", "val_every=1"])
    summary = json.loads((tmp_path / "sweep" / "optuna_summary.json").read_text())
    assert [t["state"] for t in summary["trials"]] == ["FAIL", "COMPLETE"]
    assert "trainer.max_steps (training iterations) must be positive" in summary["trials"][0]["error"]
    assert math.isfinite(summary["trials"][1]["value"]) and summary["best"]["number"] == 1
    assert (tmp_path / "sweep" / "optimization_results.yaml").exists()
