"""disent module: Eq. 4's uniform-posterior loss, Eq. 5's shuffling, one shuffled decoding per iteration, the
translate uses (swap, labels via expected embeddings, mixtures, interpolation), the data checks, and short real
runs on the embedded faces (fast_dev_run, final checkpoint with expected embeddings, evaluation)."""

from __future__ import annotations

import math

import pytest
import torch

from lightning_modules.disent import REST, shuffle_codes
from lightning_modules.losses import uniform_posterior_cross_entropy
from suite.checkpoints import read_checkpoint
from suite.errors import ConfigError, DatasetError
from suite.evaluation import evaluate_checkpoint, load_checkpoint_run
from suite.training import train
from tests.helpers.batches import FACTOR_INFO as INFO
from tests.helpers.batches import factor_batch
from tests.methods import DISENT_NETS, build
from tests.trainer_stub import attach_trainer_stub as attach_trainer

TINY = list(DISENT_NETS)
RUN = [*TINY, "method=disent", "data=synthfaces", "data.image_size=32", "data.batch_size=4", "data.train_size=32",
       "data.val_size=8", "data.test_size=8", "method.expected_embeddings.max_images=16",
       "method.attributes=[identity,expression,illumination]"]


def make(*overrides: str, info=INFO):
    return build("disent", *overrides, info=info)


# ------------------------------------------------------------------------------------------------ Eq. 4
@pytest.mark.parametrize("k", [2, 5, 147])
def test_uniform_posterior_loss_is_log_k_for_a_uniform_posterior(k):
    equal_logits = torch.full((3, k), 2.5)  # any constant row is the uniform posterior
    assert uniform_posterior_cross_entropy(equal_logits).item() == pytest.approx(math.log(k), rel=1e-6)


def test_uniform_posterior_loss_is_larger_for_any_other_posterior():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        logits = torch.randn(4, 5, generator=g) * 3
        assert uniform_posterior_cross_entropy(logits).item() > math.log(5)
    peaked = torch.tensor([[10.0, 0, 0, 0, 0]])
    assert uniform_posterior_cross_entropy(peaked).item() > uniform_posterior_cross_entropy(torch.randn(1, 5) * 0.1).item()


def test_disentanglement_loss_averages_every_other_attribute_and_z0_over_all():
    m = make("method.attributes=[expression,gaze]")
    codes = m.encode(torch.rand(2, 3, 32, 32) * 2 - 1)
    u = lambda a, c: uniform_posterior_cross_entropy(m.code_logits(a, codes[c]))  # noqa: E731
    expected = (u("gaze", "expression") + u("expression", "gaze") + (u("expression", REST) + u("gaze", REST)) / 2) / 3
    assert torch.allclose(m.disentanglement(codes), expected)


# ------------------------------------------------------------------------------------------------ Eq. 5
def test_shuffling_permutes_each_attribute_independently_and_never_z0():
    b = 64
    codes = {name: torch.arange(b, dtype=torch.float32).view(b, 1, 1, 1).expand(b, 2, 2, 2) + 1000 * i
             for i, name in enumerate(["identity", "expression", REST])}
    shuffled, perms = shuffle_codes(codes, ["identity", "expression"])
    assert set(perms) == {"identity", "expression"}
    assert shuffled[REST] is codes[REST]  # z_0 is never shuffled
    for name, perm in perms.items():
        assert sorted(perm.tolist()) == list(range(b))
        assert torch.equal(shuffled[name], codes[name][perm])
    assert not torch.equal(perms["identity"], perms["expression"])  # one permutation per attribute
    assert not torch.equal(perms["identity"], torch.arange(b))
    _, again = shuffle_codes(codes, ["identity", "expression"])
    assert not torch.equal(again["identity"], perms["identity"])  # a fresh permutation each pass


# ------------------------------------------------------------------------------------------- optimizers
def test_an_iteration_encodes_and_decodes_the_shuffled_synthesis_once():
    """The D step scores the G step's X_trn (detached): one shuffled decoding per iteration, plus Eq. 2's."""
    m = make("method.n_critic=1")
    attach_trainer(m)
    m.train()
    calls = []
    decode = m.decode
    m.decode = lambda codes, inference=False: calls.append(1) or decode(codes, inference)
    logs = m.train_iteration(factor_batch())
    assert len(calls) == 2  # X_trn once (shared by D and G) + the reconstruction
    assert "loss/D/adv" in logs and "loss/G/trn" in logs


def test_one_iteration_logs_every_loss_and_the_ablation_drops_eq4():
    m = make()
    attach_trainer(m)
    logs = m.train_iteration(factor_batch())
    for key in ("loss/G/rec", "loss/G/cls", "loss/G/dis", "loss/G/trn", "loss/G/adv", "loss/D/adv", "loss/D/gp", "loss/C/cls"):
        assert key in logs and torch.isfinite(logs[key])
    ablated = make("method.disentanglement_loss=false")
    attach_trainer(ablated)
    logs = ablated.train_iteration(factor_batch())
    assert "loss/G/dis" not in logs and "loss/G/trn" in logs


def test_classifier_warmup_trains_only_the_classifiers():
    m = make("method.classifier_warmup=2")
    attach_trainer(m)
    logs = m.train_iteration(factor_batch())
    assert "loss/C/cls" in logs and not any(k.startswith(("loss/G/", "loss/D/")) for k in logs)


# ------------------------------------------------------------------------------------------ translation
def test_swapping_all_codes_with_the_images_own_reproduces_the_reconstruction():
    m = make().eval()
    x = factor_batch()["image"]
    recon = m.decode(m.encode(x))
    out = m.translate(x, {name: x for name in m.code_names})
    assert torch.allclose(out["image"], recon, atol=1e-6)


def test_reference_swap_takes_only_the_transfer_codes_from_the_reference():
    m = make().eval()
    batch = factor_batch()
    x, ref = batch["image"], batch["ref"]
    assert m.transfer_attributes == ["expression"] and m.sample_target(batch) is ref
    codes = m.encode(x)
    codes["expression"] = m.encoders["expression"](ref)
    assert torch.allclose(m.translate(x, ref)["image"], m.decode(codes), atol=1e-6)
    codes["illumination"] = m.encoders["illumination"](ref)
    assert torch.allclose(m.translate(x, ref, swap=["expression", "illumination"])["image"], m.decode(codes), atol=1e-6)


def test_label_targets_use_the_expected_embedding_of_the_class():
    m = make().eval()
    batch = factor_batch(8)
    with pytest.raises(ConfigError, match="not computed"):
        m.translate(batch["image"], 1)
    m.compute_expected_embeddings([batch, factor_batch(8, seed=1)])
    y = torch.cat([batch["factors"]["expression"], factor_batch(8, seed=1)["factors"]["expression"]])
    z = torch.cat([m.encoders["expression"](batch["image"]), m.encoders["expression"](factor_batch(8, seed=1)["image"])])
    k = int(y[0])
    assert torch.allclose(m.expected.mean("expression")[k], z[y == k].mean(0), atol=1e-5)
    assert int(m.expected.count("expression")[k]) == int((y == k).sum())
    x = batch["image"][:3]
    codes = m.encode(x)
    codes["expression"] = m.expected.mean("expression")[k].expand(3, -1, -1, -1)
    name = INFO["factor_values"]["expression"][k]
    for target in (k, torch.tensor([k, k, k]), {"expression": name}):
        assert torch.allclose(m.translate(x, target)["image"], m.decode(codes), atol=1e-6)


def test_mixtures_are_convex_and_interpolation_runs_from_start_to_end():
    m = make().eval()
    batch = factor_batch()
    x, ref = batch["image"], batch["ref"]
    assert torch.allclose(m.mix(x, "identity", [ref, x], [1.0, 0.0]), m.translate(x, ref, swap="identity")["image"], atol=1e-6)
    half = m.translate(x, {"identity": [(0.5, ref), (0.5, x)]})["image"]
    codes = m.encode(x)
    codes["identity"] = 0.5 * m.encoders["identity"](ref) + 0.5 * codes["identity"]
    assert torch.allclose(half, m.decode(codes), atol=1e-6)
    with pytest.raises(ValueError, match="convex"):
        m.translate(x, {"identity": [(0.7, ref), (0.7, x)]})
    grid = m.interpolate(x, "expression", x, ref, steps=3)
    assert grid.shape == (4, 3, 3, 32, 32)
    assert torch.allclose(grid[:, 0], m.decode(m.encode(x)), atol=1e-6)
    assert torch.allclose(grid[:, -1], m.translate(x, ref)["image"], atol=1e-6)


# ------------------------------------------------------------------------------------------ data checks
def test_unknown_attribute_names_list_the_valid_factor_names():
    with pytest.raises(DatasetError) as err:
        make("method.attributes=[identity,pose]")
    msg = str(err.value)
    assert "pose" in msg and "identity, expression, gaze, illumination" in msg and "\n" not in msg


def test_data_with_one_categorical_factor_is_refused_in_one_sentence():
    shapes = {"name": "shapes", "view": "two_domain", "image_size": 32, "factor_names": ["shape"],
              "factor_sizes": {"shape": 2}, "domain_names": ["square", "circle"]}
    with pytest.raises(DatasetError, match=r"^disent needs several categorical factors; data=shapes has one \(shape\)\.$"):
        make(info=shapes)


def test_batches_without_the_factor_labels_are_refused():
    m = make()
    batch = factor_batch()
    del batch["factors"]["expression"]
    with pytest.raises(DatasetError, match="lack expression"):
        m.labels_of(batch)


def test_shapes_cannot_offer_the_multi_factor_view(make_cfg):
    from suite.training import build_datamodule

    cfg = make_cfg("method=disent", "data=shapes")
    with pytest.raises(DatasetError, match="multi_factor"):
        build_datamodule(cfg, cfg.method.view)


# ------------------------------------------------------------------------------------------- real runs
def test_fast_dev_run_on_synthfaces(make_cfg):
    result = train(make_cfg(*RUN, "trainer.fast_dev_run=true"))
    assert result["iteration"] == 1
    assert result["module"].expected.ready  # computed at the end, from one batch


def test_final_checkpoint_holds_expected_embeddings_and_evaluates(make_cfg, tmp_path):
    run = train(make_cfg(*RUN, "trainer.max_steps=2", "checkpoint_every=2", run_dir=tmp_path / "r"))
    ckpt = read_checkpoint(run["checkpoint"], expected_method="disent")
    state = ckpt["state_dict"]
    assert int(state["expected.iteration"]) == 2 and state["expected.count_expression"].sum() >= 16
    assert len(ckpt["optimizer_states"]) == 3
    module, dm, _ = load_checkpoint_run(run["checkpoint"])
    assert module.expected.ready and module.attributes == ["identity", "expression", "illumination"]
    out = module.translate(torch.zeros(2, 3, 32, 32), {"expression": "happy", "illumination": 0})
    assert out["image"].shape == (2, 3, 32, 32)
    metrics = evaluate_checkpoint(run["checkpoint"], tmp_path / "eval", batch_size=8, max_images=8)
    assert "psnr_gt" in metrics and (tmp_path / "eval" / "grid.png").stat().st_size > 0


def test_disent_rafd_recipe_trains_on_a_tiny_rafd_layout(make_cfg, tmp_path):
    import warnings

    from tests.datamodules.test_rafd import write_rafd

    root = write_rafd(tmp_path / "RaFD", angles=("090",))  # 20×30 frames: the recipe's 640 px crop cannot fit
    cfg = make_cfg("experiment=disent_rafd", f"data.root={root}", *TINY, "data.image_size=32", "data.batch_size=4",
                   "data.num_workers=0", "data.crop=center", "trainer.max_steps=1", "trainer.max_epochs=null", "scale=synth",
                   "method.expected_embeddings.max_images=8", run_dir=tmp_path / "r")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = train(cfg)
    module = result["module"]
    assert result["iteration"] == 1 and module.attributes == ["identity", "expression", "gaze"]
    assert module.num_classes == {"identity": 3, "expression": 8, "gaze": 3} and module.expected.ready  # 3 train models


@pytest.mark.parametrize(("experiment", "attributes", "classes"), [
    ("disent_multipie", ["identity", "expression", "illumination"], {"identity": 2, "expression": 4, "illumination": 2}),
    ("disent_bu3dfe", ["identity", "expression"], {"identity": 2, "expression": 7}),  # 12 subjects, 10 held out
])
def test_multipie_and_bu3dfe_recipes_select_their_dataset_and_train(make_cfg, tmp_path, experiment, attributes, classes):
    import warnings

    from tests.datamodules.fixtures import write_bu3dfe, write_multipie

    root = write_multipie(tmp_path / "Multi-Pie") if experiment == "disent_multipie" else write_bu3dfe(tmp_path / "BU_3DFE")
    cfg = make_cfg(f"experiment={experiment}", f"data.root={root}", *TINY, "data.image_size=32", "data.batch_size=4",
                   "data.num_workers=0", "trainer.max_steps=1", "trainer.max_epochs=null", "scale=synth",
                   "method.expected_embeddings.max_images=8", run_dir=tmp_path / "r")
    assert cfg.data.name == experiment.removeprefix("disent_") and cfg.data.protocol == "disent"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = train(cfg)
    module = result["module"]
    assert result["iteration"] == 1 and module.attributes == attributes
    assert module.num_classes == classes and module.expected.ready
