"""SPM/StarGAN labels (issue #21 items 4–5): Dc's single sigmoid for two domains (the authors' c_dim 1) and the
softmax switch, StarGAN's multi-label BCE, batch-permutation targets, the initialisation choice, and the presets."""

from __future__ import annotations

import math

import pytest
import torch

from lightning_modules.spm_labels import LabelCodec, resolve_classification
from suite.errors import ConfigError
from tests.conftest import compose_config
from tests.helpers.batches import ATTR_INFO, INFO2, INFO5, attr_batch, domain_batch
from tests.lightning_modules.test_spm import make as make_spm
from tests.lightning_modules.test_spm import run_one_iteration as step
from tests.methods import build


def make(*overrides: str, info=INFO2):
    return make_spm(*overrides, info=info)


# ------------------------------------------------------------------------------------------ classification
def test_two_domain_dc_dw_and_label_are_one_sigmoid_by_default():
    m = make("method.view=two_domain")
    assert m.codec.form == "sigmoid"
    assert m.D.cls_head.out_channels == 1 and m.Dw.cls_head.out_channels == 1
    assert m.G.encoder.body[0][0].in_channels == 3 + 1  # c_dim 1 tiled on the image, as WarpGenerator256
    logs = step(m, domain_batch(4))
    assert {"cls", "cw"} <= {k.split("/")[2] for k in logs if k.startswith("loss/G/")}


def test_softmax_switch_gives_two_logits_and_cross_entropy():
    m = make("method.view=two_domain", "method.classification=softmax")
    assert m.D.cls_head.out_channels == 2 and m.G.encoder.body[0][0].in_channels == 3 + 2
    logits, target = torch.tensor([[0.0, 1.0], [2.0, 0.0]]), torch.tensor([1, 1])
    expected = (math.log(1 + math.exp(-1.0)) + math.log(1 + math.exp(2.0))) / 2
    assert m.codec.loss(logits, target).item() == pytest.approx(expected, rel=1e-6)


def test_sigmoid_loss_is_binary_cross_entropy_of_the_attribute():
    codec = LabelCodec("sigmoid", 2)
    logits, target = torch.tensor([[0.0], [2.0]]), torch.tensor([1, 0])
    expected = (math.log(2.0) + math.log(1 + math.exp(2.0))) / 2  # −log σ(0), −log(1 − σ(2)), averaged
    assert codec.loss(logits, target).item() == pytest.approx(expected, rel=1e-6)
    assert codec.encode(torch.tensor([0, 1])).tolist() == [[0.0], [1.0]]
    assert codec.predict(torch.tensor([[-0.5], [0.5]])).tolist() == [0, 1]


def test_multilabel_loss_sums_attributes_and_averages_the_batch():
    codec = LabelCodec("multilabel", 2)
    logits, target = torch.zeros(2, 2), torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    assert codec.loss(logits, target).item() == pytest.approx(2 * math.log(2.0), rel=1e-6)  # 4·log 2 / 2


@pytest.mark.parametrize("choice,view", [("sigmoid", "multi_domain"), ("multilabel", "two_domain"), ("nope", "two_domain")])
def test_a_form_that_does_not_fit_the_view_is_one_sentence(choice, view):
    with pytest.raises(ConfigError, match="method.classification"):
        resolve_classification(choice, view)


def test_multi_domain_keeps_softmax():
    m = make(info=INFO5)
    assert m.codec.form == "softmax" and m.D.cls_head.out_channels == 5


# ------------------------------------------------------------------------------------------ targets
def test_permutation_targets_are_the_batch_labels_shuffled():
    m = make("method.target_sampling=permutation", info=INFO5)
    batch = domain_batch(64, size=8, num_domains=5)
    torch.manual_seed(0)
    _, src, tgt = m._real_batch(batch)
    assert sorted(tgt.tolist()) == sorted(src.tolist()) and not torch.equal(tgt, src)
    assert (tgt == src).any()  # same-domain targets happen, as in yunjey's Solver.train
    _, src, tgt = make(info=INFO5)._real_batch(batch)
    assert not (tgt == src).any()  # the datamodule's targets are always another domain


def test_unknown_target_sampling_is_rejected():
    with pytest.raises(ConfigError, match="target_sampling"):
        make("method.target_sampling=random")


def test_stargan_defaults_permutation_and_pytorch_init():
    m = build("stargan", info=INFO5)
    assert m.target_sampling == "permutation"
    assert norm_weights(m.G) and all(torch.equal(p, torch.ones_like(p)) for p in norm_weights(m.G))  # PyTorch's 1
    assert m.D.trunk[0].bias.abs().sum() > 0  # PyTorch's uniform conv bias, not zeroed
    spm = make(info=INFO5)  # SPM's generator: N(1, 0.02) IN weights [inferred], D PyTorch's as the authors'
    assert not all(torch.equal(p, torch.ones_like(p)) for p in norm_weights(spm.G))
    assert spm.D.trunk[0].bias.abs().sum() > 0


def norm_weights(net):
    return [mod.weight for mod in net.modules() if isinstance(mod, torch.nn.InstanceNorm2d) and mod.weight is not None]


# ------------------------------------------------------------------------------------------ StarGAN CelebA
def test_stargan_multi_label_model_trains_and_translates_to_vectors():
    m = build("stargan", "method.view=multi_attribute", info=ATTR_INFO)
    assert m.codec.form == "multilabel" and m.D.cls_head.out_channels == 4
    batch = attr_batch(4)
    torch.manual_seed(1)
    _, src, tgt = m._real_batch(batch)
    assert sorted(map(tuple, tgt.tolist())) == sorted(map(tuple, src.tolist()))  # rows permuted, each kept whole
    logs = step(m, batch)
    assert {"adv", "cls", "rec"} == {k.split("/")[2] for k in logs if k.startswith("loss/G/")} - {"total"}
    out = m.eval().translate(batch["image"], batch["target_attrs"])
    assert out["image"].shape == (4, 3, 32, 32)
    assert m.sample_target(batch) is batch["target_attrs"]


def test_stargan_presets_pin_the_published_values():
    five = compose_config(["run_dir=/tmp/unused", "experiment=stargan_celeba_5attr"])
    assert list(five.data.attributes) == ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]
    assert (five.method.view, five.method.classification, five.method.target_sampling) == (
        "multi_attribute", "multilabel", "permutation")
    assert (five.data.test_size, five.data.image_size, five.data.batch_size, five.trainer.max_steps) == (1999, 128, 16, 200000)
    single = compose_config(["run_dir=/tmp/unused", "experiment=stargan_celeba"])
    assert single.method.view == "two_domain" and single.method.classification == "auto"
    rafd = compose_config(["run_dir=/tmp/unused", "experiment=stargan_rafd"])
    assert rafd.data.domains is None and rafd.method.view == "multi_domain"  # all 8 expressions
    from datamodules.rafd_layout import EXPRESSIONS

    assert len(EXPRESSIONS) == 8


def test_stargan_multi_label_runs_on_attribute_data(make_cfg):
    from suite.training import train
    from tests.methods import SPM_NETS

    result = train(make_cfg("method=stargan", *SPM_NETS, "method.view=multi_attribute", "data=synthfaces",
                            "data.attributes=[Smiling,Eyeglasses,Bangs]", "data.image_size=32", "data.batch_size=2",
                            "data.train_size=4", "data.test_size=2", "data.val_size=2", "trainer.fast_dev_run=true"))
    assert result["iteration"] == 1 and result["module"].D.cls_head.out_channels == 3
