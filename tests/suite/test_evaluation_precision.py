"""evaluate.py's ``precision``: the method's translations under bf16 autocast, every metric still in float32."""

from __future__ import annotations

import math

import pytest
import torch

import evaluate
from lightning_modules.aggan import AGGAN
from suite.errors import ConfigError
from suite.evaluation import autocast_method, evaluate_checkpoint
from suite.training import build_datamodule, build_method, train
from tests.conftest import compose_config
from tests.methods import RUN_OVERRIDES
from tests.suite.test_resume import EXTRA_RESUME_CASES
from tests.suite.test_training import TINY

RESUME_CASES = {**RUN_OVERRIDES, **EXTRA_RESUME_CASES}


def test_bf16_evaluation_is_close_to_fp32(make_cfg, tmp_path, monkeypatch):
    ckpt = train(make_cfg(*TINY, "trainer.max_steps=2", run_dir=tmp_path / "r"))["checkpoint"]
    seen: list[tuple[bool, torch.dtype]] = []
    translate = AGGAN.translate

    def spy(self, *args, **kwargs):  # what the method's forward passes run under
        seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))
        return translate(self, *args, **kwargs)

    monkeypatch.setattr(AGGAN, "translate", spy)

    def run(precision: str) -> dict[str, float]:
        cfg = compose_config([f"ckpt_path={ckpt}", f"precision={precision}", "device=cpu", "classifier.epochs=1",
                              "num_grid=4", f"out_dir={tmp_path / precision}", "table_dir=null"],
                             config_name="evaluate")
        [metrics] = evaluate.run(cfg).values()
        return metrics

    fp32 = run("32")
    assert seen and not any(enabled for enabled, _ in seen)
    seen.clear()
    bf16 = run("bf16")
    assert seen and all(enabled and dtype == torch.bfloat16 for enabled, dtype in seen)

    assert set(bf16) == set(fp32)
    assert all(math.isfinite(v) for v in bf16.values()), bf16
    assert bf16["psnr_gt"] != fp32["psnr_gt"]  # the translations really changed precision …
    assert bf16["psnr_gt"] == pytest.approx(fp32["psnr_gt"], abs=0.3)  # … and barely moved (dB)
    assert bf16["ssim_gt"] == pytest.approx(fp32["ssim_gt"], abs=0.02)
    assert bf16["mask_iou"] == pytest.approx(fp32["mask_iou"], abs=0.05)
    assert bf16["accuracy_target"] == pytest.approx(fp32["accuracy_target"], abs=0.15)  # 16 images: ±2 flips
    assert bf16["fid_classifier"] == pytest.approx(fp32["fid_classifier"], rel=0.05)
    assert bf16["psnr_input"] == fp32["psnr_input"]  # no translation involved: untouched


def test_unknown_precision_is_refused_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match=r"precision must be one of 32, .*bf16.*got 'fp8'"):
        evaluate_checkpoint(tmp_path / "no.ckpt", precision="fp8")


@pytest.mark.parametrize("method", list(RESUME_CASES))
def test_every_method_translates_under_bf16(make_cfg, method):
    """Each method's translate (EMA copies, multi-domain, HR stage included) runs with its networks in bf16 and
    hands back float32 close to its float32 translation."""
    cfg = make_cfg(*RESUME_CASES[method])
    dm = build_datamodule(cfg, cfg.method.view)
    dm.setup("test")
    module = build_method(cfg, dm.info).eval()
    batch = next(iter(dm.test_dataloader()))
    target = module.sample_target(batch)
    torch.manual_seed(0)  # the same random codes (bridge) in both calls
    reference = module.translate(batch["image"], target)
    autocast_method(module, torch.device("cpu"), torch.bfloat16)
    torch.manual_seed(0)
    out = module.translate(batch["image"], target)
    assert set(out) == set(reference)
    for key, value in out.items():
        if torch.is_tensor(reference[key]) and reference[key].is_floating_point():
            assert value.dtype == torch.float32 and torch.isfinite(value).all(), key
            assert (value - reference[key]).abs().mean() < 0.02, key  # bf16 keeps ~3 significant digits
    assert not torch.equal(out["image"], reference["image"])  # the networks did run in bf16
