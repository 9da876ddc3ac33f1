"""Fast paths by config (suite/speed.py): which nets get compiled, channels_last weights and batches, the same
losses with and without channels_last, and clear errors for bad values."""

from __future__ import annotations

import warnings

import pytest
import torch

from suite.errors import ConfigError
from suite.speed import FastPaths, apply_fast_paths, generator_nets, resolve_flag, to_channels_last
from suite.training import build_datamodule, build_method, train
from tests.methods import RUN_OVERRIDES as METHODS


def build(make_cfg, method):
    cfg = make_cfg(*METHODS[method], "trainer.max_steps=2")
    dm = build_datamodule(cfg, cfg.method.view)
    return build_method(cfg, dm.info)


@pytest.mark.parametrize(("method", "expected"), [
    ("aggan", {"G_xy", "G_yx"}),
    ("stargan", {"G"}),
    ("spm", {"G", "Dw"}),
    ("disent", {"encoders.identity", "encoders.expression", "encoders.illumination", "encoders.rest", "decoder",
                "classifiers.identity", "classifiers.expression", "classifiers.illumination"}),
    ("bridge", {"G", "M", "E"}),
])
def test_generator_nets_leave_the_discriminators_out(make_cfg, method, expected):
    module = build(make_cfg, method)
    assert set(generator_nets(module)) == expected


def test_channels_last_converts_weights_and_image_batches(make_cfg):
    module = build(make_cfg, "aggan")
    compiled = apply_fast_paths(module, channels_last=True, compile_generators=False)
    assert compiled == []
    convs = [m.weight for m in module.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    batch = module.on_after_batch_transfer({"image": torch.rand(2, 3, 8, 8), "domain": torch.zeros(2, dtype=torch.long)}, 0)
    assert batch["image"].is_contiguous(memory_format=torch.channels_last)
    assert not batch["image"].is_contiguous()  # really NHWC strides, not a no-op on a 1×1 tensor
    assert batch["domain"].dtype == torch.long


def test_to_channels_last_leaves_other_values_alone():
    out = to_channels_last({"a": [torch.rand(1, 3, 4, 4)], "b": torch.rand(3, 4, 4), "c": "x"})
    assert out["a"][0].is_contiguous(memory_format=torch.channels_last)
    assert out["b"].is_contiguous() and out["c"] == "x"


def test_flags_resolve_auto_by_device_and_reject_other_values():
    assert resolve_flag("channels_last", "auto", "cuda", ("cuda",)) is True
    assert resolve_flag("channels_last", "auto", "cpu", ("cuda",)) is False
    assert resolve_flag("compile", "true", "cpu", ()) is True
    with pytest.raises(ConfigError, match="speed.compile must be true, false, auto, nets or steps"):
        FastPaths(channels_last=False, compile="yes")


def test_channels_last_training_matches_the_default_layout(make_cfg, tmp_path):
    """Two iterations of AGGAN with speed.channels_last=true give the losses of the default layout (the layout
    changes the order of float sums only)."""
    losses = []
    for cl in ("false", "true"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cfg = make_cfg(*METHODS["aggan"], "trainer.max_steps=2", f"speed.channels_last={cl}", run_dir=tmp_path / cl)
            result = train(cfg)
        module = result["module"]
        assert module.channels_last_inputs is (cl == "true")
        losses.append({k: v.item() for k, v in result["trainer"].callback_metrics.items() if "/loss/" in k})
    assert losses[0].keys() == losses[1].keys() and losses[0]
    for key in losses[0]:
        assert losses[1][key] == pytest.approx(losses[0][key], rel=1e-4, abs=1e-5), key


def test_compile_steps_sets_the_step_compiler_and_falls_back_without_a_cpp_compiler(monkeypatch, caplog):
    from types import SimpleNamespace

    import suite.speed as speed
    from tests.methods import build

    trainer = SimpleNamespace(strategy=SimpleNamespace(root_device=torch.device("cpu")))
    module = build("stargan")
    FastPaths(channels_last=False, compile="steps", compile_mode="max-autotune").setup(trainer, module, "fit")
    assert module.compile_steps == {"mode": "max-autotune"}
    plain = build("stargan")
    FastPaths(channels_last=False, compile="steps").setup(trainer, plain, "fit")
    step = lambda: None  # noqa: E731
    assert plain.compile_steps == {} and plain.step_function(step) is not step  # no mode given: still compiled
    assert build("stargan").step_function(step) is step  # off: the closure as it is
    assert speed.resolve_compile(True, "cpu") == "nets" and speed.resolve_compile("auto", "cuda") is None
    with pytest.raises(ConfigError, match="nets or steps"):
        speed.resolve_compile("everything", "cpu")
    monkeypatch.setattr(speed, "cpp_compiler", lambda: None)
    fresh = build("stargan")
    with caplog.at_level("WARNING", logger="suite.speed"):
        FastPaths(channels_last=False, compile="steps").setup(trainer, fresh, "fit")
    assert fresh.compile_steps is None
    assert [r.getMessage() for r in caplog.records if "C++ compiler" in r.getMessage()]
