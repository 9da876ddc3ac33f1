"""disent's class lists (issue 22): per-subject classes come from the training split only (Oldfield et al. fit C_id
on the training identities: 147 / 59 / 90), held-out subjects are UNSEEN_CLASS (−1) and never index a class, the
checkpoint records the classes, and evaluation on unseen subjects scores what exists."""

from __future__ import annotations

import math

import pytest
import torch

from datamodules.base import UNSEEN_CLASS
from datamodules.synthetic import SynthFacesDataModule
from suite.checkpoints import read_checkpoint
from suite.errors import CheckpointError, DatasetError
from suite.evaluation import evaluate_checkpoint, load_checkpoint_run
from suite.training import train
from tests.helpers.batches import factor_batch
from tests.lightning_modules.test_disent import RUN, make


def _faces(**kw) -> SynthFacesDataModule:
    settings = dict(view="multi_factor", num_identities=10, test_identities=3, image_size=16, train_size=24,
                    val_size=4, test_size=12, batch_size=12, factors=["identity", "expression", "illumination"])
    return SynthFacesDataModule(**{**settings, **kw})


def test_identity_classes_are_the_training_people_only():
    dm = _faces()
    info = dm.info
    train_names = [f"id{i:02d}" for i in dm.train_identities]
    assert info["factor_sizes"]["identity"] == 7  # 10 people, 3 held out (today's code counts 10)
    assert info["factor_values"]["identity"] == train_names
    dm.setup("fit")
    train_ids = next(iter(dm.train_dataloader()))["factors"]["identity"]
    assert train_ids.min() >= 0 and train_ids.max() < 7
    # a train label names the very person it renders
    ds = dm.dataset("train")
    for i in range(6):
        assert train_names[int(ds[i]["factors"]["identity"])] == f"id{ds.record(i).identity:02d}"
    dm.setup("test")
    test = next(iter(dm.test_dataloader()))
    for key in ("factors", "ref_factors", "target_factors"):
        assert bool((test[key]["identity"] == UNSEEN_CLASS).all())  # the held-out people are no class


def test_the_model_has_one_identity_output_per_training_person_and_refuses_unseen_labels_in_training():
    info = _faces().info
    m = make("method.attributes=[identity,expression,illumination]", info={**info, "image_size": 32})
    assert m.num_classes["identity"] == 7 and m.classifiers["identity"].head[-1].out_features == 7
    batch = factor_batch()
    batch["factors"] = {k: v % info["factor_sizes"].get(k, 3) for k, v in batch["factors"].items()}
    batch["factors"]["identity"][0] = UNSEEN_CLASS
    with pytest.raises(DatasetError, match="unseen subjects are for evaluation only"):
        m.labels_of(batch)
    assert int(m.labels_of(batch, unseen=True)["identity"][0]) == UNSEEN_CLASS
    batch["factors"]["identity"][0] = 7  # one past the last class
    with pytest.raises(DatasetError, match=r"classes 0\.\.6"):
        m.labels_of(batch, unseen=True)


def test_checkpoint_records_the_classes_and_evaluation_on_unseen_people_indexes_none(make_cfg, tmp_path):
    run = train(make_cfg(*RUN, "data.num_identities=10", "data.test_identities=3", "trainer.max_steps=2",
                         "checkpoint_every=2", run_dir=tmp_path / "r"))
    ckpt = read_checkpoint(run["checkpoint"], expected_method="disent")
    classes = ckpt["suite"]["disent_classes"]
    assert len(classes["identity"]) == 7 and classes["identity"] == ckpt["suite"]["data_info"]["factor_values"]["identity"]
    assert ckpt["state_dict"]["classifiers.identity.head.1.weight"].shape[0] == 7
    assert ckpt["state_dict"]["expected.count_identity"].shape[0] == 7
    assert (tmp_path / "r" / "fig6_class_conditional_pmfs.png").stat().st_size > 0  # drawn when training ends
    metrics = evaluate_checkpoint(run["checkpoint"], tmp_path / "eval", batch_size=8, max_images=8)
    assert math.isnan(metrics["disent/accuracy/identity/identity"])  # no unseen person has a class to hit
    assert 0 <= metrics["disent/accuracy/expression/expression"] <= 1
    assert math.isnan(metrics["disent/pmf_true/identity/identity"])
    assert 0 < metrics["disent/pmf_true/expression/rest"] < 1
    assert (tmp_path / "eval" / "fig6_class_conditional_pmfs.png").stat().st_size > 0
    module, _, _ = load_checkpoint_run(run["checkpoint"])
    ckpt["suite"]["disent_classes"]["identity"] = ckpt["suite"]["disent_classes"]["identity"][::-1]
    with pytest.raises(CheckpointError, match="other classes of identity"):
        module.on_load_checkpoint(ckpt)
    assert torch.isfinite(module.expected.mean("identity")).all()
