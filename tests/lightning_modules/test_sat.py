"""SAT module: λ induction, the three phases, the frozen VGG, offline weights, translate per phase, λ resume."""

from __future__ import annotations

import subprocess
import sys
from contextlib import nullcontext
from pathlib import Path

import pytest
import torch
import torchvision

from lightning_modules.losses import perceptual_self_regularization
from lightning_modules.sat import AdaptiveWeightInduction
from nets.vgg import VGG19_WEIGHTS_FILE
from suite.checkpoints import read_checkpoint
from suite.errors import ConfigError, WeightsMissingError
from suite.training import build_method, train
from tests.helpers.batches import domain_batch
from tests.helpers.params import changed, params_of, same, snapshot
from tests.methods import METHODS, SAT_NETS, method_config
from tests.trainer_stub import attach_trainer_stub as attach_trainer

ROOT = Path(__file__).resolve().parents[2]
INFO = METHODS["sat"].info
SMALL = list(SAT_NETS)
TINY_RUN = [*SMALL, "data.image_size=32", "data.batch_size=2", "data.train_size=16", "data.test_size=8",
            "data.val_size=4", "method.sample_every=0", "method.num_samples=2"]


pytestmark = pytest.mark.usefixtures("no_weight_downloads")


def make(*overrides: str, info=INFO):
    cfg = method_config("sat", "trainer.max_steps=20", "method.phases.g0=2", "method.phases.attention=2", *overrides,
                        schedule=False)
    with pytest.warns(UserWarning, match="pretrained=false") if cfg.method.pretrained is False else nullcontext():
        return build_method(cfg, info)


def iterate(module, n=1, batch=None):
    batch = batch or domain_batch(2, 16)
    logs = None
    for _ in range(n):
        logs = module.train_iteration(batch)
        module.iteration += 1
    return logs


# ------------------------------------------------------------------------------------------ λ induction
def test_induction_rises_every_interval_then_holds_once_the_loss_sinks_below_the_threshold():
    ind = AdaptiveWeightInduction(step=0.5, every=2, threshold=0.5, smoothing=0.0)
    losses = [1.0] * 7 + [0.3] + [1.0] * 6
    values = [ind.update(loss) for loss in losses]
    assert values[:7] == [0.0, 0.5, 0.5, 1.0, 1.0, 1.5, 1.5]
    assert ind.holding and values[7:] == [1.5] * 7  # holds even when the loss rises again


def test_induction_uses_the_smoothed_loss():
    ind = AdaptiveWeightInduction(step=1.0, every=1, threshold=0.5, smoothing=0.5)
    for loss in [1.0, 1.0, 1.0, 0.2]:  # one dip: smoothed 0.6 stays above the threshold
        ind.update(loss)
    assert not ind.holding and ind.value == 4.0 and ind.smoothed == pytest.approx(0.6)
    ind.update(0.2)  # smoothed 0.4
    assert ind.holding and ind.value == 4.0
    ind.restart()
    ind.update(float("nan"))
    assert ind.smoothed is None and ind.count == 0


def test_induction_restart_state_dict_fixed_mode_cap_and_direction():
    ind = AdaptiveWeightInduction(step=0.5, every=1, threshold=0.1, smoothing=0.0, max_value=1.0)
    for _ in range(5):
        ind.update(1.0)
    assert ind.value == 1.0  # capped
    copy = AdaptiveWeightInduction(step=0.5, every=1, threshold=0.1, smoothing=0.0, max_value=1.0)
    copy.load_state_dict(ind.state_dict())
    assert copy.state_dict() == ind.state_dict()
    ind.restart(phase=2)
    assert (ind.value, ind.smoothed, ind.holding, ind.count, ind.phase) == (0.0, None, False, 0, 2)
    fixed = AdaptiveWeightInduction(mode="fixed", fixed=3.0)
    assert [fixed.update(x) for x in (5.0, 0.0, 5.0)] == [3.0, 3.0, 3.0]
    above = AdaptiveWeightInduction(step=1.0, every=1, threshold=2.0, smoothing=0.0, stop_when="above")
    assert [above.update(x) for x in (1.0, 1.0, 3.0, 1.0)] == [1.0, 2.0, 2.0, 2.0]
    with pytest.raises(ConfigError, match="induction.mode"):
        AdaptiveWeightInduction(mode="sometimes")


def test_induction_caps_lambda_per_phase_when_given_a_mapping():
    ind = AdaptiveWeightInduction(step=1.0, every=1, threshold=0.1, smoothing=0.0,
                                  max_value={"g0": None, "attention": 2.0})
    ind.restart(phase=1)
    assert [float(ind.update(1.0)) for _ in range(5)] == [1.0, 2.0, 3.0, 4.0, 5.0]  # phase 1: uncapped
    ind.restart(phase=2)
    assert [float(ind.update(1.0)) for _ in range(4)] == [1.0, 2.0, 2.0, 2.0]  # phase 2: capped at 2
    with pytest.raises(ConfigError, match="unknown phase G_attn"):
        AdaptiveWeightInduction(max_value={"G_attn": 1.0})
    m = make("method.induction.max_value={g0:3.0,attention:0.5}", "method.induction.step=1.0",
             "method.induction.every=1", "method.induction.threshold=-1.0")  # the loss never sinks: λ always rises
    attach_trainer(m)
    lams = [float(iterate(m)["schedule/lambda"]) for _ in range(4)]  # phases 1, 1, 2, 2 (the λ each step used)
    assert lams == [0.0, 1.0, 0.0, 0.5]


# --------------------------------------------------------------------------------------------- phases
def test_phases_follow_the_iteration_counter():
    m = make("method.phases.g0=3", "method.phases.attention=2")
    assert [m.phase_at(i) for i in range(7)] == [1, 1, 1, 2, 2, 3, 3]
    assert make("method.use_attention=false").phase_at(100) == 1


def test_phase1_trains_g0_and_d_only():
    m = make()
    attach_trainer(m)
    g0, a, d = snapshot(m.G0), snapshot(m.A), snapshot(m.D)
    logs = iterate(m)
    assert logs["schedule/phase"] == 1
    assert not same(g0, m.G0) and same(a, m.A) and not same(d, m.D)
    for key in ("loss/G/adv", "loss/G/reg", "loss/G/total", "loss/D/adv", "schedule/lambda", "schedule/adv_smoothed"):
        assert key in logs


def test_phase2_leaves_g0_unchanged():
    m = make()
    attach_trainer(m)
    iterate(m, 2)  # phase 1
    g0, a = snapshot(m.G0), snapshot(m.A)  # weights and BatchNorm statistics
    logs = iterate(m, 2)  # phase 2
    assert logs["schedule/phase"] == 2
    assert same(g0, m.G0) and not same(a, m.A)


def test_phase2_frozen_g0_can_use_batch_statistics():
    m = make("method.frozen_g0_norm=batch")
    attach_trainer(m)
    iterate(m, 2)  # phase 1
    weights = params_of(m.G0)  # weights only: the running statistics keep tracking the batches
    iterate(m)  # phase 2
    assert m.G0.training  # BatchNorm normalises with the batch's statistics, as in phase 1
    assert not changed(weights, m.G0)
    m2 = make()
    attach_trainer(m2)
    iterate(m2, 3)
    assert not m2.G0.training  # the default: running statistics
    with pytest.raises(ConfigError, match="frozen_g0_norm must be running or batch"):
        build_method(method_config("sat", "method.frozen_g0_norm=frozen", schedule=False), INFO)


def test_mask_sparsity_adds_the_mean_attention_from_phase_2_on():
    m = make("method.mask_sparsity=0.5", "method.induction.mode=fixed", "method.induction.fixed=2.0")
    attach_trainer(m)
    logs = iterate(m)  # phase 1: A ≡ 1 is not trained, no prior
    assert "loss/G/mask_sparsity" not in logs
    batch = domain_batch(2, 16)
    iterate(m, 1, batch)
    with torch.no_grad():
        expected = m.A(batch["image"]).mean()  # the map the next step's forward computes (same weights, same batch)
    logs = iterate(m, 1, batch)  # phase 2
    assert logs["schedule/phase"] == 2
    total = logs["loss/G/adv"] + 2.0 * logs["loss/G/reg"] + 0.5 * logs["loss/G/mask_sparsity"]
    assert logs["loss/G/total"] == pytest.approx(float(total), rel=1e-5)
    assert float(logs["loss/G/mask_sparsity"]) == pytest.approx(float(expected), rel=1e-5)
    plain = make("method.induction.mode=fixed", "method.induction.fixed=2.0")
    attach_trainer(plain)
    assert "loss/G/mask_sparsity" not in iterate(plain, 3)
    with pytest.raises(ConfigError, match="mask_sparsity is a loss weight"):
        build_method(method_config("sat", "method.mask_sparsity=-1", schedule=False), INFO)


def test_phase3_trains_both_jointly_at_the_smaller_lr():
    m = make()
    attach_trainer(m)
    iterate(m, 4)
    g0, a = snapshot(m.G0), snapshot(m.A)
    logs = iterate(m)
    assert logs["schedule/phase"] == 3
    assert not same(g0, m.G0) and not same(a, m.A)
    lr = m.hparams.optim["lr"]
    assert m.named_optimizer("joint").param_groups[0]["lr"] == pytest.approx(0.1 * lr)
    assert m.named_optimizer("G0").param_groups[0]["lr"] == pytest.approx(lr)


def test_vgg_feature_net_is_in_no_optimizer_and_never_changes():
    m = make()
    attach_trainer(m)
    vgg = snapshot(m.feature_net)
    in_optimizers = {id(p) for opt in m.trainer.optimizers for g in opt.param_groups for p in g["params"]}
    assert not any(id(p) in in_optimizers for p in m.feature_net.parameters())
    assert not any(p.requires_grad for p in m.feature_net.parameters())
    iterate(m, 5)  # all three phases
    assert same(vgg, m.feature_net)
    assert not any(p.requires_grad for p in m.feature_net.parameters())


def test_lambda_restarts_at_each_phase_start_and_the_joint_phase_keeps_it():
    m = make("method.induction.step=1.0", "method.induction.every=1", "method.induction.threshold=-1")
    attach_trainer(m)
    lambdas = [float(iterate(m)["schedule/lambda"]) for _ in range(6)]
    # phase 1: 0, 1; phase 2 restarts: 0, 1 → 2 after its last update; phase 3 keeps that value (Sec. 2: the
    # induction is repeated "when training G0 and Gattn", then λ is kept constant)
    assert lambdas == [0.0, 1.0, 0.0, 1.0, 2.0, 2.0]


def test_fixed_lambda_mode():
    m = make("method.induction.mode=fixed", "method.induction.fixed=2.5")
    attach_trainer(m)
    assert [float(iterate(m)["schedule/lambda"]) for _ in range(3)] == [2.5, 2.5, 2.5]


# ------------------------------------------------------------------------------------- regularizer
def test_eq4_perceptual_distance():
    fx = [torch.zeros(2, 3, 4, 4), torch.zeros(2, 5, 2, 2)]
    fy = [torch.ones(2, 3, 4, 4), torch.full((2, 5, 2, 2), 2.0)]
    # per location ‖·‖² summed over channels: 3 and 5·4 = 20; averaged over locations; weighted 1/32, 1/16
    assert perceptual_self_regularization(fx, fy, [1 / 32, 1 / 16]).item() == pytest.approx(3 / 32 + 20 / 16)


@pytest.mark.parametrize("distance", ["l1", "l2"])
def test_pixel_regularizers_need_no_feature_net(distance):
    m = make(f"method.regularizer={distance}")
    assert m.feature_net is None
    attach_trainer(m)
    assert "loss/G/reg" in iterate(m)


# ------------------------------------------------------------------------------------------ weights
def test_pretrained_false_is_warned_and_logged():
    m = make("method.pretrained=false")  # make() asserts the warning
    attach_trainer(m)
    assert iterate(m)["vgg_pretrained"] == 0


def test_missing_weights_stop_with_one_sentence(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsMissingError, match=VGG19_WEIGHTS_FILE) as err:
        make("method.pretrained=true")
    assert str(tmp_path / "hub" / "checkpoints") in str(err.value)


def test_pretrained_true_loads_the_file_from_torch_home(tmp_path, monkeypatch):
    ckpt_dir = tmp_path / "hub" / "checkpoints"
    ckpt_dir.mkdir(parents=True)
    torch.manual_seed(0)
    # the feature part of a randomly initialised torchvision vgg19 (its classifier is never read; the full-file
    # case is tests/nets/test_vgg.py)
    features = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["E"])
    state = {f"features.{k}": v for k, v in features.state_dict().items()}
    torch.save(state, ckpt_dir / VGG19_WEIGHTS_FILE)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    m = make("method.pretrained=true")
    for net in (m.A.encoder, m.feature_net):
        for key, value in net.features.state_dict().items():
            assert torch.equal(value, state[f"features.{key}"])
    attach_trainer(m)
    assert iterate(m)["vgg_pretrained"] == 1


def test_cli_without_weights_prints_one_sentence(tmp_path):
    env = {"WANDB_MODE": "disabled", "PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "TORCH_HOME": str(tmp_path),
           "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "train.py", "method=sat", "scale=paper", "logger=none", "data.image_size=32",
                          f"hydra.run.dir={tmp_path / 'run'}"], cwd=ROOT, capture_output=True, text=True, timeout=240, env=env)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert "Traceback" not in res.stderr and VGG19_WEIGHTS_FILE in lines[-1] and str(tmp_path) in lines[-1]


# ---------------------------------------------------------------------------------------- translate
def test_translate_mask_is_one_in_phase_1_and_composes_content_and_input_later():
    m = make().eval()
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    out = m.translate(x, torch.tensor([1, 1, 1]))
    assert torch.equal(out["mask"], torch.ones(3, 1, 16, 16)) and torch.equal(out["image"], out["content"])  # phase 1: A ≡ 1
    m.iteration = 3  # last trained iteration in phase 2
    out = m.translate(x, torch.tensor([1, 1, 1]))
    assert out["mask"].shape == (3, 1, 16, 16) and out["content"].shape == (3, 3, 16, 16)
    assert torch.allclose(out["image"], out["mask"] * out["content"] + (1 - out["mask"]) * x)


def test_zero_attention_returns_the_input_exactly():
    m = make().eval()
    m.iteration = 10  # joint phase
    torch.nn.init.zeros_(m.A.out_conv.weight)
    torch.nn.init.constant_(m.A.out_conv.bias, -1e4)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    assert torch.equal(m.translate(x, 1)["image"], x)


def test_translate_refuses_the_untrained_direction():
    m = make().eval()
    with pytest.raises(ConfigError, match="one direction"):
        m.translate(torch.zeros(1, 3, 16, 16), torch.tensor([0]))


def test_without_attention_translate_returns_g0_only():
    m = make("method.use_attention=false").eval()
    assert m.A is None and set(m.optimizer_groups()) == {"G0", "D"}
    assert set(m.translate(torch.zeros(1, 3, 16, 16), 1)) == {"image"}


# ------------------------------------------------------------------------------------- runs, resume
def test_fast_dev_run_on_synthfaces(make_cfg):
    with pytest.warns(UserWarning, match="pretrained=false"):
        result = train(make_cfg("experiment=sat_synth", "trainer.fast_dev_run=true", *TINY_RUN))
    assert result["iteration"] == 1


def test_checkpoint_holds_lambda_and_resume_continues_mid_phase(make_cfg, tmp_path):
    common = ["method=sat", *TINY_RUN, "method.phases.g0=2", "method.phases.attention=3", "method.induction.every=1",
              "method.induction.step=0.5", "method.induction.threshold=-1"]
    with pytest.warns(UserWarning):
        first = train(make_cfg(*common, "trainer.max_steps=3", run_dir=tmp_path / "a"))
    ckpt = read_checkpoint(first["checkpoint"], expected_method="sat")
    assert ckpt["suite"]["iteration"] == 3 and len(ckpt["optimizer_states"]) == 4
    # phase 2 began at iteration 2 (λ restarted), one update since
    assert ckpt["sat"]["induction"] == {"value": 0.5, "smoothed": pytest.approx(ckpt["sat"]["induction"]["smoothed"]),
                                        "holding": False, "count": 1, "increments": 1, "phase": 2}
    with pytest.warns(UserWarning):
        resumed = train(make_cfg(*common, "trainer.max_steps=6", f"ckpt_path={first['checkpoint']}", run_dir=tmp_path / "b"))
    module = resumed["module"]
    assert module.iteration == 6 and module.induction.phase == 3
    # no restart on resume: phase 2 ran iterations 2, 3, 4 (λ 0 → 1.5 after 3 updates); the joint phase
    # (iteration 5) keeps it
    assert module.induction.value == 1.5 and module.induction.count == 3
