"""Bridge module: label arithmetic (att_diff, att_ak), references, losses, the critic schedule,
translate in both modes, and short real runs on the embedded faces."""

from __future__ import annotations

import pytest
import torch

from lightning_modules.bridge import attribute_difference, attribute_keeping, draw_references
from lightning_modules.losses import mode_seeking_loss
from suite.errors import ConfigError, DatasetError
from suite.evaluation import evaluate_checkpoint
from suite.training import build_datamodule, build_method, train
from tests.conftest import compose_config
from tests.helpers.batches import ATTR_INFO as INFO
from tests.helpers.batches import attr_batch
from tests.methods import BRIDGE_NETS, build
from tests.trainer_stub import attach_trainer_stub as attach_trainer

TINY = list(BRIDGE_NETS)


def make(*overrides: str, info=INFO):
    return build("bridge", *overrides, info=info)


def loss_names(logs, net):
    return {k.split("/")[2] for k in logs if k.startswith(f"loss/{net}/")} - {"total"}


# ---------------------------------------------------------------------------------------------- labels
def test_att_diff_and_att_ak_on_hand_made_labels():
    # Supplement Fig. 1's construction on five attributes: 0 and 3 are kept (red), 1, 2 and 4 converted (blue)
    y_s = torch.tensor([[1.0, 0.0, 1.0, 0.0, 1.0]])
    y_t = torch.tensor([[1.0, 1.0, 0.0, 0.0, 0.0]])
    assert attribute_difference(y_s, y_t).tolist() == [[0.0, 1.0, -1.0, 0.0, -1.0]]
    assert attribute_difference(y_t, y_s).tolist() == [[0.0, -1.0, 1.0, 0.0, 1.0]]
    # part A = 1 − |att_diff| = [1, 0, 0, 1, 0]; part B = 1 − 2·Y_s = [−1, 1, −1, 1, −1]
    assert attribute_keeping(y_s, y_t).tolist() == [[-1.0, 0.0, 0.0, 1.0, 0.0]]


def test_att_ak_is_the_flip_of_each_kept_attribute():
    y_s = torch.randint(0, 2, (64, 6)).float()
    y_t = torch.randint(0, 2, (64, 6)).float()
    ak = attribute_keeping(y_s, y_t)
    kept = y_s == y_t
    assert torch.equal(ak[~kept], torch.zeros_like(ak[~kept]))
    # as an att_diff, att_ak takes every kept attribute to its opposite value
    assert torch.equal((y_s + ak)[kept], (1 - y_s)[kept])


def test_references_are_a_permutation():
    perm = draw_references(16, generator=torch.Generator().manual_seed(3))
    assert sorted(perm.tolist()) == list(range(16))
    m = make()
    batch = attr_batch(8)
    torch.manual_seed(1)
    x, y_s, x_ref, y_t, d_st, ref_index = m._references(batch)
    assert torch.equal(d_st, y_t - y_s)
    matches = [[j for j in range(8) if torch.equal(x_ref[i], x[j])] for i in range(8)]
    assert all(len(js) == 1 for js in matches) and sorted(js[0] for js in matches) == list(range(8))
    assert all(torch.equal(y_t[i], y_s[js[0]]) for i, js in enumerate(matches))
    assert all(ref_index[i] == batch["index"][js[0]] for i, js in enumerate(matches))  # r_M is read at the reference


def test_references_from_the_batch_when_asked():
    m = make("method.references=batch")
    batch = attr_batch(4)
    p = m._references(batch)
    assert torch.equal(p.x_ref, batch["ref"]) and torch.equal(p.y_t, batch["target_attrs"])
    assert torch.equal(p.ref_index, batch["ref_index"])


# ---------------------------------------------------------------------------------------------- losses
def test_mode_seeking_is_finite_when_two_codes_give_identical_images():
    r1, r2 = torch.randn(4, 16), torch.randn(4, 16)
    img = torch.rand(4, 3, 8, 8)
    value = mode_seeking_loss(r1, r2, img, img.clone())
    assert torch.isfinite(value) and value.item() == pytest.approx((r1 - r2).abs().mean().item() / 1e-5, rel=1e-5)
    assert mode_seeking_loss(r1, r2, img, img + 1) < value


def test_mode_seeking_inside_the_generator_loss_with_a_code_blind_generator():
    m = make()
    torch.nn.init.zeros_(m.G.to_rgb[1].weight)
    torch.nn.init.zeros_(m.G.to_rgb[1].bias)  # every code gives the same (zero) image
    batch = attr_batch()
    total, parts = m.generator_loss(m._references(batch), m.syntheses)
    assert torch.isfinite(parts["ms"]) and parts["ms"] > 1e3 and torch.isfinite(total)


def test_every_loss_of_the_method_is_trained():
    m = make()
    attach_trainer(m)
    logs = m.train_iteration(attr_batch())
    assert loss_names(logs, "G") == {"adv", "cls", "rec", "cyc", "sty", "ak", "latent", "ms"}
    assert loss_names(logs, "D") == {"adv", "cls", "gp"}
    assert m.syntheses == ["rand", "ref", "int"]


def test_published_weights_are_the_defaults():
    mc = compose_config(["run_dir=/tmp/unused", "method=bridge", "scale=paper"]).method
    assert (mc.lambda_cls, mc.lambda_rec, mc.lambda_cyc, mc.lambda_ms, mc.lambda_sty, mc.lambda_ak) == (
        10.0, 100.0, 100.0, 0.005, 50.0, 100.0)
    assert mc.lambda_gp == 10.0 and mc.n_critic == 5 and mc.latent_dim == 16 and mc.code_channels == 32
    assert mc.optim.lr == pytest.approx(2e-4) and list(mc.optim.betas) == [0.5, 0.999]
    assert (mc.generator.ngf, mc.encoder.nef, mc.discriminator.ndf, mc.mapping.start_channels) == (32, 16, 16, 64)


@pytest.mark.parametrize("modes,g_losses,syntheses", [
    ("[label]", {"adv", "cls", "rec", "cyc", "ak", "latent", "ms"}, ["rand"]),
    ("[reference]", {"adv", "cls", "rec", "cyc", "ak", "latent"}, ["ref"]),
])
def test_one_mode_alone_trains_its_path_only(modes, g_losses, syntheses):
    m = make(f"method.modes={modes}")
    attach_trainer(m)
    logs = m.train_iteration(attr_batch())
    assert loss_names(logs, "G") == g_losses and m.syntheses == syntheses


def test_zero_weights_switch_terms_off():
    m = make("method.lambda_ak=0", "method.lambda_ms=0", "method.lambda_sty=0", "method.interpolation=false")
    attach_trainer(m)
    logs = m.train_iteration(attr_batch())
    assert loss_names(logs, "G") == {"adv", "cls", "rec", "cyc", "latent"} and m.syntheses == ["rand", "ref"]


ONLY_LATENT = ("method.lambda_adv=0", "method.lambda_cls=0", "method.lambda_rec=0", "method.lambda_sty=0",
               "method.lambda_ms=0")


def test_authors_weighting_is_fifty_times_the_mean_of_two_cycles_and_keeping():
    torch.manual_seed(0)
    m = make(*ONLY_LATENT)
    total, parts = m.generator_loss(m._references(attr_batch()), m.syntheses)
    cyc_rand_plus_ref = 2 * parts["cyc"]  # parts["cyc"] is the mean of the two cycles
    assert m.hparams.lambda_cyc_ak == 50.0
    assert torch.allclose(total, 50.0 * (cyc_rand_plus_ref + parts["ak"]) / 3, rtol=1e-5)
    assert torch.allclose(parts["latent"], (cyc_rand_plus_ref + parts["ak"]) / 3, rtol=1e-5)


def test_paper_weighting_is_the_supplements_per_term_lambdas():
    m = make(*ONLY_LATENT, "method.loss_weighting=paper")
    total, parts = m.generator_loss(m._references(attr_batch()), m.syntheses)
    assert "latent" not in parts
    assert torch.allclose(total, 100.0 * parts["cyc"] + 100.0 * parts["ak"], rtol=1e-5)


@pytest.mark.parametrize("stop", [True, False])
def test_mode_seeking_stops_the_gradient_through_the_second_image(monkeypatch, stop):
    import lightning_modules.bridge as bridge_module

    seen = {}

    def spy(code_a, code_b, image_a, image_b, eps):
        seen.update(a=image_a.requires_grad, b=image_b.requires_grad, codes=(code_a, code_b))
        return mode_seeking_loss(code_a, code_b, image_a, image_b, eps)

    monkeypatch.setattr(bridge_module, "mode_seeking_loss", spy)
    m = make(f"method.ms_stop_gradient={str(stop).lower()}", "method.references=batch")
    p = m._references(attr_batch())
    m.generator_loss(p, m.syntheses)
    assert seen["a"] is (not stop) and seen["b"] is True  # sg(G(r1)) as the code, G(r) always trained
    assert seen["codes"][1].abs().max() <= 1.0  # r is the stepped memory code, r1 fresh


def test_bad_settings_are_one_sentence():
    with pytest.raises(ConfigError, match="method.modes"):
        make("method.modes=[labels]")
    with pytest.raises(ConfigError, match="multi_attribute"):
        make("method.view=multi_domain")
    for key in ("architecture", "random_code", "loss_weighting", "references"):
        with pytest.raises(ConfigError, match=f"method.{key}"):
            make(f"method.{key}=nonsense")
    with pytest.raises(DatasetError, match="attr_names"):
        make(info={k: v for k, v in INFO.items() if k != "attr_names"})


# ---------------------------------------------------------------------------------------------- schedule
def test_critic_runs_five_steps_per_generator_step():
    m = make()
    assert m.hparams.n_critic == 5
    trainer = attach_trainer(m)
    steps = {"G": 0, "D": 0}
    for name, opt in zip(m._optimizer_names, trainer.strategy.optimizers):
        opt.register_step_post_hook(lambda *_a, name=name: steps.__setitem__(name, steps[name] + 1))
    batch = attr_batch(2)
    for it in range(10):
        m.iteration = it
        m.train_iteration(batch)
    assert steps == {"D": 10, "G": 2}


# ---------------------------------------------------------------------------------------------- translate
def test_label_based_translation_gives_diverse_results_for_several_codes():
    m = make().eval()
    batch = attr_batch(3)
    out = m.translate(batch["image"], batch["target_attrs"], source_attrs=batch["attrs"], num_codes=4)
    assert out["images"].shape == (4, 3, 3, 32, 32) and torch.equal(out["image"], out["images"][0])
    assert out["code"].shape == (3, 8, 16, 16)
    assert not torch.allclose(out["images"][0], out["images"][1])
    again = m.translate(batch["image"], batch["target_attrs"], source_attrs=batch["attrs"], num_codes=4)
    assert torch.equal(again["images"], out["images"])  # seeded by method.seed


def test_label_code_is_m_plus_e_with_scaled_att_diff():
    m = make().eval()
    batch = attr_batch(2)
    r = torch.randn(2, 16)
    d = attribute_difference(batch["attrs"], batch["target_attrs"]) * 0.5
    with torch.no_grad():
        expected = m.G(batch["image"], m.M(r, d) + m.E(batch["image"], -d))
    out = m.translate(batch["image"], batch["target_attrs"], source_attrs=batch["attrs"], noise=r, scale=0.5)
    assert torch.allclose(out["image"], expected, atol=1e-5)
    default = m.translate(batch["image"], batch["target_attrs"], source_attrs=batch["attrs"], noise=r)
    assert m.hparams.test_diff_scale == 1.5 and not torch.allclose(default["image"], expected)


def test_reference_based_and_interpolated_translation():
    m = make().eval()
    batch = attr_batch(3)
    x, y_s, ref, y_r = batch["image"], batch["attrs"], batch["ref"], batch["target_attrs"]
    d = attribute_difference(y_s, y_r) * 1.5
    with torch.no_grad():
        expected = m.G(x, m.E(ref, d) + m.E(x, -d))
    by_ref = m.translate(x, None, source_attrs=y_s, reference=ref, reference_attrs=y_r)
    assert torch.allclose(by_ref["image"], expected, atol=1e-5)
    one_ref = m.translate(x, reference=ref[:1], source_attrs=y_s, reference_attrs=y_r[:1])
    assert one_ref["image"].shape == x.shape
    r = torch.randn(3, 16)
    by_label = m.translate(x, y_r, source_attrs=y_s, noise=r)
    both = dict(source_attrs=y_s, reference=ref, reference_attrs=y_r, noise=r)
    assert torch.allclose(m.translate(x, y_r, alpha=1.0, **both)["image"], by_label["image"], atol=1e-5)
    assert torch.allclose(m.translate(x, y_r, alpha=0.0, **both)["image"], by_ref["image"], atol=1e-5)
    with pytest.raises(ConfigError, match="alpha"):
        m.translate(x, y_r, **both)


def test_missing_labels_are_read_off_the_classifier():
    m = make().eval()
    batch = attr_batch(2)
    y_hat = m.predict_attributes(batch["image"])
    assert set(y_hat.unique().tolist()) <= {0.0, 1.0}
    implicit = m.translate(batch["image"], batch["target_attrs"])
    explicit = m.translate(batch["image"], batch["target_attrs"], source_attrs=y_hat)
    assert torch.equal(implicit["image"], explicit["image"])


def test_sample_target_is_label_based_to_the_target_attrs():
    m = make().eval()
    batch = attr_batch(2)
    target = m.sample_target(batch)
    assert torch.equal(target["target_attrs"], batch["target_attrs"]) and torch.equal(target["source_attrs"], batch["attrs"])
    direct = m.translate(batch["image"], batch["target_attrs"], source_attrs=batch["attrs"])
    assert torch.equal(m.translate(batch["image"], target)["image"], direct["image"])


# ---------------------------------------------------------------------------------------------- real runs
RUN_TINY = [*TINY, "data.image_size=32", "data.batch_size=2", "data.train_size=8", "data.test_size=4",
            "data.val_size=2", "data.attributes=[Smiling,Eyeglasses,Bangs,Blond_Hair]"]


@pytest.mark.parametrize("modes", ["[label,reference]", "[label]", "[reference]"])
def test_fast_dev_run_on_synthfaces_then_translate_in_both_modes(make_cfg, modes):
    result = train(make_cfg("method=bridge", "data=synthfaces", "trainer.fast_dev_run=true", f"method.modes={modes}",
                            *RUN_TINY))
    assert result["iteration"] == 1
    m = result["module"].eval()
    dm = result["datamodule"]
    batch = next(iter(dm.val_dataloader()))
    label = m.translate(batch["image"], m.sample_target(batch), num_codes=2)
    ref = m.translate(batch["image"], reference=batch["ref"], source_attrs=batch["attrs"],
                      reference_attrs=batch["target_attrs"])
    for out in (label, ref):
        assert out["image"].shape == batch["image"].shape and torch.isfinite(out["image"]).all()


def test_training_counts_five_critic_steps_per_generator_step(make_cfg, tmp_path):
    result = train(make_cfg("method=bridge", *RUN_TINY, "trainer.max_steps=10", run_dir=tmp_path / "r"))
    assert result["iteration"] == 10
    assert result["trainer"].global_step == 10 + 2  # Lightning counts every optimizer step


def test_evaluation_reports_the_bridge_metrics(make_cfg, tmp_path):
    run = train(make_cfg("method=bridge", *RUN_TINY, "trainer.max_steps=1", run_dir=tmp_path / "r"))
    metrics = evaluate_checkpoint(run["checkpoint"], tmp_path / "eval", batch_size=4)
    assert {"psnr_gt", "ssim_gt", "background_l1"} <= set(metrics)


def test_shapes_cannot_offer_the_multi_attribute_view():
    cfg = compose_config(["run_dir=/tmp/unused", "method=bridge", "data=shapes", "scale=synth"])
    with pytest.raises(DatasetError, match="multi_attribute"):
        build_datamodule(cfg, cfg.method.view)


def test_default_synthfaces_config_instantiates():
    cfg = compose_config(["run_dir=/tmp/unused", "method=bridge", "data=synthfaces", "scale=synth"])
    dm = build_datamodule(cfg, cfg.method.view)
    m = build_method(cfg, dm.info)
    assert m.num_attrs == len(dm.info["attr_names"]) and m.code_size == 16
