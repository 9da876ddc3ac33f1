"""disent's Ablation I (Sec. IV-B1, Eq. 10): fully-connected encoders and classifiers for expression and
illumination, trained on L_cls^z + λdis·L_dis only — no z_0, decoder or critic; the λdis = 0 switch drops Eq. 4."""

from __future__ import annotations

import pytest
import torch

from lightning_modules.disent_ablation import AblationIEncodings
from lightning_modules.losses import uniform_posterior_cross_entropy
from nets.disent import ShallowFCClassifier, ShallowFCEncoder
from suite.errors import ConfigError
from tests.helpers.batches import factor_batch
from tests.helpers.params import snapshot
from tests.methods import build
from tests.trainer_stub import attach_trainer_stub as attach_trainer

TINY_FC = ("experiment=disent_ablation1_synth", "method.encoder.hidden=16", "method.encoder.code_dim=8",
           "method.classifier.hidden=16")


def make(*overrides: str) -> AblationIEncodings:
    m = build("disent", *TINY_FC, *overrides)
    attach_trainer(m)
    return m


def test_the_preset_builds_eq10s_network_and_nothing_else():
    m = make()
    assert isinstance(m, AblationIEncodings) and m.attributes == ["expression", "illumination"]
    assert m.code_names == ["expression", "illumination"]  # no z_0
    assert m.decoder is None and m.D is None
    assert all(isinstance(e, ShallowFCEncoder) for e in m.encoders.values())
    assert all(isinstance(c, ShallowFCClassifier) for c in m.classifiers.values())
    assert set(m.optimizer_groups()) == {"G", "C"}
    with pytest.raises(ConfigError, match="has no decoder"):
        m.translate(factor_batch()["image"], factor_batch()["ref"])


def test_eq4_without_z0_is_the_mean_of_each_codes_uniform_posterior_loss():
    m = make()
    codes = m.encode(factor_batch()["image"])
    u = lambda a, c: uniform_posterior_cross_entropy(m.code_logits(a, codes[c]))  # noqa: E731
    assert torch.allclose(m.disentanglement(codes), (u("illumination", "expression") + u("expression", "illumination")) / 2)


def test_an_iteration_is_a_classifier_step_then_eq10_on_the_encoders_only():
    m = make()
    before = snapshot(m)
    logs = m.train_iteration(factor_batch())
    assert {"loss/C/cls", "loss/G/cls", "loss/G/dis"} <= set(logs)
    assert not any(k.startswith(("loss/D/", "loss/G/rec", "loss/G/adv", "loss/G/trn")) for k in logs)
    after = snapshot(m)
    assert all(not torch.equal(before[k], after[k]) for k in before if k.startswith(("encoders.", "classifiers.")) and k.endswith("weight"))
    ablated = make("method.disentanglement_loss=false")
    assert "loss/G/dis" not in ablated.train_iteration(factor_batch())


def test_classifiers_learning_from_codes_move_only_their_dense_heads():
    m = make("method.classifiers_learn_from=codes", "method.classifier_warmup=5")
    before = snapshot(m)
    logs = m.train_iteration(factor_batch())  # warm-up: the C step only
    after = snapshot(m)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert "loss/C/cls" in logs and changed and all(".head." in k for k in changed)
    with pytest.raises(ConfigError, match="classifiers_learn_from"):
        make("method.classifiers_learn_from=labels")
