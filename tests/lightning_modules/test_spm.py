"""SPM / SPM-HR / StarGAN module: losses per switch, the critic schedule, translate (flow bound,
motion-basis combination), the HR stage's LR checkpoint, and short real runs on the embedded data."""

from __future__ import annotations

import logging

import pytest
import torch

from suite.errors import CheckpointError, ConfigError
from suite.evaluation import load_checkpoint_run
from suite.training import train
from tests.conftest import compose_config
from tests.helpers.batches import INFO5, domain_batch
from tests.helpers.params import changed, params_of
from tests.methods import SPM_NETS, build
from tests.trainer_stub import attach_trainer_stub as attach_trainer

INFO2 = {**INFO5, "view": "two_domain", "domain_names": ["square", "circle"], "num_domains": 2}
INFO_HR = {**INFO5, "image_size": 64}
TINY = [*SPM_NETS, "method.n_critic=1"]


def make(*overrides: str, info=INFO5):
    return build("spm", "method.n_critic=1", *overrides, info=info)


def run_one_iteration(module, batch):
    attach_trainer(module)
    module.train()
    return module.train_iteration(batch)


def loss_names(logs, net):
    return {k.split("/")[2] for k in logs if k.startswith(f"loss/{net}/")} - {"total"}


def test_full_spm_has_every_loss_of_eqs_2_to_10():
    m = make()
    logs = run_one_iteration(m, domain_batch(4, num_domains=5))
    assert loss_names(logs, "G") == {"adv", "cls", "cw", "mask", "rec"}
    assert loss_names(logs, "D") == {"adv", "cls", "gp"}
    assert m.Dw.cls_head.out_channels == 5 and m.D.cls_head.out_channels == 5


def test_flow_smoothness_is_off_by_default_and_switchable():
    batch = domain_batch(4, num_domains=5)
    assert "loss/G/flow_tv" not in run_one_iteration(make(), batch)
    logs = run_one_iteration(make("method.lambda_flow_tv=0.5"), batch)
    assert logs["loss/G/flow_tv"].item() > 0
    assert "loss/G/flow_tv" not in run_one_iteration(make("method.lambda_flow_tv=0.5", "method.motion=false"), batch)


def test_published_weights_are_the_defaults():
    cfg = compose_config(["run_dir=/tmp/unused", "method=spm", "scale=paper"])
    mc = cfg.method
    assert (mc.lambda_cls, mc.lambda_cw, mc.lambda_mask, mc.lambda_adv, mc.lambda_rec) == (1.0, 0.5, 1.0, 1.0, 10.0)
    assert mc.gan_mode == "wgan" and mc.lambda_gp == 10.0 and mc.n_critic == 5 and mc.lambda_w == 0.1
    assert mc.generator.n_refine_blocks == 12 and mc.generator.n_blocks == 6 and mc.optim.lr == pytest.approx(1e-4)


def test_generator_is_updated_every_n_critic_iterations():
    m = make("method.n_critic=3")
    batch = domain_batch(2, num_domains=5)
    attach_trainer(m)
    seen = []
    for it in range(4):
        m.iteration = it
        seen.append("loss/G/total" in m.train_iteration(batch))
    assert seen == [True, False, False, True]


def test_no_motion_removes_motion_module_and_its_classifier():
    m = make("method.motion=false")
    logs = run_one_iteration(m, domain_batch(2, num_domains=5))
    assert m.G.flow_head is None and not hasattr(m, "Dw") and "cw" not in loss_names(logs, "G")
    out = m.translate(torch.zeros(2, 3, 32, 32), torch.tensor([1, 2]))
    assert "flow" not in out and "deformed" not in out and "mask" in out


def test_no_refinement_removes_r_mask_and_sparsity():
    m = make("method.refinement=false")
    logs = run_one_iteration(m, domain_batch(2, num_domains=5))
    assert m.G.refiner is None and "mask" not in loss_names(logs, "G")
    out = m.translate(torch.zeros(2, 3, 32, 32), torch.tensor([1, 2]))
    assert "mask" not in out and torch.equal(out["image"], out["deformed"])


def test_stargan_is_spm_configured_off():
    m = make("method=stargan")
    assert type(m).__name__ == "SPM" and m.method_name == "stargan" and m.G.is_stargan
    logs = run_one_iteration(m, domain_batch(2, num_domains=5))
    assert loss_names(logs, "G") == {"adv", "cls", "rec"} and loss_names(logs, "D") == {"adv", "cls", "gp"}
    assert set(m.translate(torch.zeros(1, 3, 32, 32), 1)) == {"image"}


def test_stargan_published_settings():
    mc = compose_config(["run_dir=/tmp/unused", "method=stargan", "scale=paper"]).method
    assert (mc.generator.ngf, mc.generator.n_blocks, mc.generator.n_downsampling) == (64, 6, 2)
    assert (mc.discriminator.n_layers, mc.discriminator.slope, mc.n_critic) == (6, 0.01, 5)
    assert (mc.lambda_cls, mc.lambda_rec, mc.lambda_gp, mc.optim.lr) == (1.0, 10.0, 10.0, 1e-4)
    assert list(mc.optim.betas) == [0.5, 0.999] and mc.schedule.decay_start_fraction == 0.5


def test_two_domain_view_trains_both_directions():
    m = make("method.view=two_domain", info=INFO2)
    batch = domain_batch(4)
    x, src, tgt = m._real_batch(batch)
    assert torch.equal(x[:2], batch["image"][:2]) and torch.equal(x[2:], batch["ref"][2:])
    assert src.tolist() == [0, 0, 1, 1] and tgt.tolist() == [1, 1, 0, 0]
    assert "loss/G/total" in run_one_iteration(m, batch)


def test_wrong_view_is_rejected():
    with pytest.raises(ConfigError, match="multi_domain"):
        make("method.view=multi_factor")


def test_too_deep_discriminator_is_one_sentence():
    with pytest.raises(ConfigError, match="method.discriminator"):
        make("method.discriminator.n_layers=6")


# ---------------------------------------------------------------------------------------------- translate
def test_flow_is_bounded_by_lambda_w():
    m = make().eval()
    out = m.translate(torch.rand(3, 3, 32, 32) * 2 - 1, torch.tensor([0, 2, 4]))
    assert out["flow"].abs().max() <= 0.1 + 1e-6


def test_motion_basis_combination_adds_fields_and_warps_once():
    m = make().eval()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    single = [m.translate(x, torch.tensor([k, k]))["flow"] for k in (1, 3)]
    both = m.translate(x, torch.tensor([[1, 3], [1, 3]]))
    assert torch.allclose(both["flow"], single[0] + single[1], atol=1e-6)
    from nets.spm import warp

    assert torch.allclose(both["deformed"], warp(x, both["flow"]), atol=1e-6)
    one = m.translate(x, [[1]])  # 1×K broadcasts to the batch; K = 1 is the plain translation
    assert torch.allclose(one["image"], m.translate(x, 1)["image"], atol=1e-6)
    half = m.translate(x, [[1, 3]], weights=[0.5, 0.5])
    assert torch.allclose(half["flow"], both["flow"] / 2, atol=1e-6)


def test_combination_needs_the_motion_module():
    m = make("method.motion=false").eval()
    with pytest.raises(ConfigError, match="motion"):
        m.translate(torch.zeros(1, 3, 32, 32), [[1, 2]])


# ---------------------------------------------------------------------------------------------- HR stage
def make_hr(*overrides: str):
    return make("method=spm_hr", "method.lr_size=32", "method.discriminator.n_layers=3", *overrides, info=INFO_HR)


def test_hr_stage_changes_the_output_size_and_adds_its_nets():
    m = make_hr().eval()
    assert m.D_h.n_layers == m.D.n_layers + 1 and m.T.T_w is not None
    out = m.translate(torch.rand(2, 3, 64, 64) * 2 - 1, torch.tensor([1, 2]))
    assert out["image"].shape == (2, 3, 64, 64) and out["flow"].shape == (2, 2, 64, 64)
    assert out["low_image"].shape == (2, 3, 32, 32)
    combined = m.translate(torch.rand(2, 3, 64, 64) * 2 - 1, [[1, 2]])
    assert combined["image"].shape == (2, 3, 64, 64)
    logs = run_one_iteration(m, domain_batch(2, size=64, num_domains=5))
    assert {"adv", "adv_low", "cls", "cls_low", "rec", "rec_low", "mask", "mask_low", "cw"} == loss_names(logs, "G")
    assert {"adv", "adv_low", "gp", "gp_low", "cls", "cls_low"} == loss_names(logs, "D")


def test_hr_sizes_are_checked():
    with pytest.raises(ConfigError, match="power of two"):
        make("method=spm_hr", "method.lr_size=24", info=INFO_HR)


def _lr_checkpoint(tmp_path, module, method="spm", image_size=32, domains=None):
    path = tmp_path / f"{method}.ckpt"
    info = {**INFO5, "image_size": image_size, "domain_names": domains or INFO5["domain_names"]}
    torch.save({"suite": {"format": 1, "method": method, "data_info": info}, "state_dict": module.state_dict()}, path)
    return path


def test_hr_stage_loads_the_lr_generator(tmp_path):
    lr = make()
    path = _lr_checkpoint(tmp_path, lr)
    hr = make_hr(f"method.lr_ckpt_path={path}")
    assert changed(params_of(lr.G), hr.G)
    hr.load_low_resolution(str(path))
    for net in ("G", "D", "Dw"):
        assert not changed(params_of(getattr(lr, net)), getattr(hr, net))


def test_hr_stage_rejects_missing_foreign_and_mismatched_checkpoints(tmp_path):
    hr = make_hr()
    with pytest.raises(CheckpointError, match="no checkpoint"):
        hr.load_low_resolution(str(tmp_path / "missing.ckpt"))
    with pytest.raises(CheckpointError, match="method=aggan"):
        hr.load_low_resolution(str(_lr_checkpoint(tmp_path, make(), method="aggan")))
    with pytest.raises(CheckpointError, match="lr_size"):
        hr.load_low_resolution(str(_lr_checkpoint(tmp_path, make(), image_size=64)))
    with pytest.raises(CheckpointError, match="method.motion"):
        hr.load_low_resolution(str(_lr_checkpoint(tmp_path, make("method.motion=false"))))


def test_hr_stage_without_lr_checkpoint_warns(caplog):
    hr = make_hr()
    with caplog.at_level(logging.WARNING, logger="lightning_modules.spm"):
        hr.load_low_resolution(None)
    assert "lr_ckpt_path" in caplog.text


# ---------------------------------------------------------------------------------------------- real runs
RUN_TINY = [*TINY, "data.image_size=32", "data.batch_size=2", "data.train_size=16", "data.test_size=5", "data.val_size=5",
            "method.n_critic=5"]


@pytest.mark.parametrize("method,data,extra", [
    ("spm", "synthfaces", []),
    ("spm", "shapes", ["method.view=two_domain"]),
    ("stargan", "synthfaces", []),
    ("spm_hr", "synthfaces", ["data.image_size=64", "method.lr_size=32"]),
])
def test_fast_dev_run(make_cfg, method, data, extra):
    result = train(make_cfg(f"method={method}", f"data={data}", "trainer.fast_dev_run=true", *RUN_TINY, *extra))
    assert result["iteration"] == 1


def test_hr_run_starts_from_an_lr_run(make_cfg, tmp_path):
    lr = train(make_cfg("method=spm", *RUN_TINY, "trainer.max_steps=2", run_dir=tmp_path / "lr"))
    lr_out = lr["module"].translate(torch.zeros(1, 3, 32, 32), 1)["image"]
    hr = train(make_cfg("method=spm_hr", *RUN_TINY, "data.image_size=64", "method.lr_size=32", "trainer.max_steps=1",
                        "+method.optim.lr_G=1e-12", f"method.lr_ckpt_path={lr['checkpoint']}", run_dir=tmp_path / "hr"))
    # G's lr is ~0 here, so after one iteration the HR run's LR generator is still the LR run's
    assert not changed(params_of(lr["module"].G), hr["module"].G, atol=1e-8)
    hr_out = hr["module"].translate(torch.zeros(1, 3, 64, 64), 1)
    assert lr_out.shape[-1] == 32 and hr_out["image"].shape[-1] == 64
    # the LR file is read only when the HR stage starts: evaluation and resuming no longer need it
    lr["checkpoint"].unlink()
    module, _, _ = load_checkpoint_run(hr["checkpoint"])
    assert module.translate(torch.zeros(1, 3, 64, 64), 1)["image"].shape[-1] == 64
    resumed = train(make_cfg("method=spm_hr", *RUN_TINY, "data.image_size=64", "method.lr_size=32", "trainer.max_steps=2",
                             f"method.lr_ckpt_path={lr['checkpoint']}", f"ckpt_path={hr['checkpoint']}", run_dir=tmp_path / "hr2"))
    assert resumed["iteration"] == 2


def test_hr_run_with_an_lr_checkpoint_of_another_method_stops(make_cfg, tmp_path):
    other = train(make_cfg("method=stargan", *RUN_TINY, "trainer.max_steps=1", run_dir=tmp_path / "sg"))
    with pytest.raises(CheckpointError, match="method=stargan"):
        train(make_cfg("method=spm_hr", *RUN_TINY, "data.image_size=64", "method.lr_size=32", "trainer.max_steps=1",
                       f"method.lr_ckpt_path={other['checkpoint']}", run_dir=tmp_path / "hr"))


def test_motion_combination_grid_has_input_three_translations_and_three_flows(tmp_path):
    from PIL import Image

    from lightning_modules.samples import save_motion_combination_grid

    m = make().eval()
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    names = ["neutral", "happy", "surprised", "angry", "sad"]
    path = save_motion_combination_grid(tmp_path / "combo.png", m, x, (1, 2), names)
    width, height = Image.open(path).size
    assert (width, height) == (7 * 33 + 1, 3 * 33 + 1)  # 7 columns × 3 rows of 32 px with 1 px padding
    assert "happy+surprised" in path.with_suffix(".txt").read_text()


@pytest.mark.parametrize("overrides, info", [
    (("method=stargan",), INFO5),
    ((), INFO5),
    (("method=spm_hr", "method.lr_size=32", "method.discriminator.n_layers=3"), INFO_HR),
], ids=["stargan", "spm", "spm_hr_two_scales"])
def test_joint_critic_pass_gives_the_separate_passes_losses_and_gradients(overrides, info):
    """joint_critic_pass scores [real; fake; x̂] in one D pass: the same D-step losses (adversarial, classification,
    gradient penalty) and the same D gradients as three passes, since StarGAN's D has no batch statistics."""
    batch = domain_batch(4, num_domains=5, size=info["image_size"])
    results = []
    for joint in (True, False):
        m = build("spm", *overrides, "method.n_critic=2", f"method.joint_critic_pass={str(joint).lower()}", info=info)
        torch.manual_seed(0)
        for p in m.parameters():
            p.data = torch.randn_like(p) * 0.05  # the same weights in both modules
        attach_trainer(m)
        m.train()
        m.iteration = 1  # a D-only iteration
        grads = {}
        step = torch.optim.Adam.step

        def capture(opt, *a, **k):
            grads.update({n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None})
            return step(opt, *a, **k)

        torch.manual_seed(1)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(torch.optim.Adam, "step", capture)
            logs = m.train_iteration(batch)
        results.append((logs, grads))
    (joint_logs, joint_grads), (sep_logs, sep_grads) = results
    assert set(joint_logs) == set(sep_logs) and any(k.endswith("/gp") for k in joint_logs)
    for k in joint_logs:
        torch.testing.assert_close(joint_logs[k], sep_logs[k], rtol=1e-4, atol=1e-5)
    assert set(joint_grads) == set(sep_grads) and all(n.startswith(("D", "D_h")) for n in joint_grads)
    for n in joint_grads:
        torch.testing.assert_close(joint_grads[n], sep_grads[n], rtol=1e-3, atol=1e-5)
