"""Every config group composes, and every method × embedded dataset instantiates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import get_class, instantiate

from suite.errors import DatasetError
from suite.training import build_datamodule, build_loggers, build_method
from tests.conftest import CONF_DIR, compose_config

CONF = Path(CONF_DIR)
GROUP_OPTIONS = {g: sorted(p.stem for p in (CONF / g).glob("*.yaml"))
                 for g in ("method", "data", "trainer", "logger", "debug", "experiment", "scale")}
EMBEDDED = ["synthfaces", "shapes"]
BASE = ["run_dir=/tmp/compose-test"]


@pytest.mark.parametrize("group", sorted(GROUP_OPTIONS))
def test_every_option_of_every_group_composes(group):
    assert GROUP_OPTIONS[group], f"conf/{group} is empty"
    for option in GROUP_OPTIONS[group]:
        cfg = compose_config([*BASE, f"{group}={option}"])
        assert cfg is not None
        if group == "method":
            assert cfg.method.name == option


# A recipe's name promises its dataset: "<method>_<data>[_…]", where "synth" means the embedded faces and a
# folder dataset goes by its own name. (Paper presets once composed the embedded faces silently.)
RECIPE_DATA_ALIASES = {"synth": "synthfaces", "horse2zebra": "folder", "mnist": "digits"}


def promised_dataset(experiment: str) -> str:
    names = {**{d: d for d in GROUP_OPTIONS["data"]}, **RECIPE_DATA_ALIASES}
    tokens = [token for token in names if f"_{token}_" in f"_{experiment}_"]
    assert tokens, f"experiment {experiment} names no dataset"
    return names[max(tokens, key=len)]  # the longest name that matches: celeba_hq over celeba


def test_recipe_names_are_read_the_way_the_next_test_expects():
    assert promised_dataset("spm_celeba_hq_hr") == "celeba_hq"
    assert promised_dataset("disent_synth_no_dis") == "synthfaces"
    assert promised_dataset("sat_horse2zebra") == "folder"


@pytest.mark.parametrize("experiment", GROUP_OPTIONS["experiment"])
def test_every_recipe_selects_the_dataset_and_scale_its_name_promises(experiment):
    cfg = compose_config([*BASE, f"experiment={experiment}"])
    data = promised_dataset(experiment)
    assert cfg.data.name == data
    assert cfg.scale == ("synth" if data in EMBEDDED else "paper")
    assert set(cfg.method.name.split("_")) <= set(experiment.split("_"))  # spm_celeba_hq_hr trains spm_hr


@pytest.mark.parametrize("method", GROUP_OPTIONS["method"])
@pytest.mark.parametrize("data", EMBEDDED)
def test_method_and_embedded_data_instantiate(method, data):
    cfg = compose_config([*BASE, f"method={method}", f"data={data}", "scale=synth"])
    if cfg.method.view not in get_class(cfg.data._target_).views:
        # e.g. disent's multi_factor on shapes: building stops with one sentence naming the data and the view
        with pytest.raises(DatasetError) as err:
            build_datamodule(cfg, cfg.method.view)
        message = str(err.value)
        assert f"data={data}" in message and cfg.method.view in message
        assert "\n" not in message and message.endswith(".") and ". " not in message
        return
    dm = build_datamodule(cfg, cfg.method.view)
    module = build_method(cfg, dm.info)
    assert module.method_name == method


def assert_aggan_paper_values(cfg):
    assert cfg.scale == "paper" and cfg.scale_note.startswith("published values")
    assert cfg.method.generator.ngf == 64 and cfg.method.generator.n_blocks == 5  # the paper's five R256 (AGGAN Sec. III-D)
    assert cfg.method.optim.lr == pytest.approx(1e-4) and cfg.method.lambda_tv == pytest.approx(1e-6)
    assert cfg.trainer.max_steps == 200000


def test_paper_scale_is_the_default_even_on_the_embedded_data():
    """Choosing a dataset never switches the scale: `python train.py` alone is paper scale (the demo is a recipe)."""
    assert_aggan_paper_values(compose_config(BASE))
    assert_aggan_paper_values(compose_config([*BASE, "data=shapes"]))
    assert compose_config(BASE).data.image_size == 128


@pytest.mark.parametrize("data", ["celeba", "rafd", "afhq"])
def test_real_data_without_a_scale_choice_gets_paper_values(data):
    cfg = compose_config([*BASE, "method=spm", f"data={data}"])
    assert cfg.scale == "paper"
    assert cfg.method.n_critic == 5 and cfg.method.generator.ngf == 64 and cfg.method.optim.lr == pytest.approx(1e-4)


def test_scale_synth_selects_cpu_values_and_says_so():
    cfg = compose_config([*BASE, "scale=synth"])
    assert cfg.scale == "synth" and cfg.scale_note.startswith("CPU-scale values")
    assert cfg.method.generator.ngf == 16 and cfg.trainer.max_steps == 1200 and cfg.data.image_size == 32
    assert_aggan_paper_values(compose_config([*BASE, "scale=synth", "scale=paper"]))  # the last choice wins


def test_the_demo_recipe_selects_synth_scale():
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[*BASE, "experiment=aggan_synth"], return_hydra_config=True)
    assert cfg.hydra.runtime.choices.scale == "synth" and cfg.scale == "synth"  # a group choice, not a value
    assert cfg.method.generator.ngf == 16 and cfg.method.optim.lr == pytest.approx(5e-4)
    assert cfg.trainer.max_steps == 2400 and cfg.data.image_size == 32 and cfg.data.batch_size == 16  # the recipe's own
    assert cfg.evaluate_checkpoint == "best"


def test_command_line_value_beats_scale():
    cfg = compose_config([*BASE, "method.generator.ngf=48"])
    assert cfg.method.generator.ngf == 48
    cfg = compose_config([*BASE, "experiment=spm_synth", "method.n_critic=7", "trainer.max_steps=9"])
    assert cfg.scale == "synth" and cfg.method.n_critic == 7 and cfg.trainer.max_steps == 9
    assert compose_config([*BASE, "experiment=spm_synth", "scale=paper"]).method.n_critic == 5


def test_no_data_config_carries_a_scale():
    for data in GROUP_OPTIONS["data"]:
        assert "scale" not in compose_config([*BASE, f"data={data}"]).data


def test_cfg_job_shows_the_scale_and_why(tmp_path):
    """`python train.py experiment=aggan_synth --cfg job` prints `scale` and `scale_note` first."""
    res = subprocess.run([sys.executable, "train.py", "experiment=aggan_synth", "--cfg", "job"], cwd=CONF.parent,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == "scale: synth" and lines[1].startswith("scale_note: CPU-scale values"), res.stdout[:400]


def test_rafd_with_two_devices_composes():
    cfg = compose_config([*BASE, "method=aggan", "data=rafd", "trainer.devices=2"])
    assert cfg.trainer.devices == 2 and cfg.scale == "paper"


@pytest.mark.parametrize("logger", ["csv", "tensorboard", "wandb", "none"])
def test_loggers_instantiate(logger, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    cfg = compose_config([f"run_dir={tmp_path}", f"logger={logger}"])
    loggers = build_loggers(cfg)
    assert len(loggers) == (0 if logger == "none" else 1)


@pytest.mark.parametrize("trainer", ["default", "cpu", "gpu", "ddp"])
def test_trainer_presets(trainer):
    cfg = compose_config([*BASE, f"trainer={trainer}"])
    assert cfg.trainer._target_ == "pytorch_lightning.Trainer"
    if trainer == "ddp":
        assert cfg.trainer.strategy == "ddp_find_unused_parameters_true"
    if trainer == "cpu":
        t = instantiate(cfg.trainer, logger=False, enable_checkpointing=False, max_steps=1)
        assert t.accelerator.__class__.__name__ == "CPUAccelerator"


def test_slurm_launcher_config_composes():
    cfg = compose_config([*BASE, "hydra/launcher=slurm"], config_name="train")
    assert cfg is not None
