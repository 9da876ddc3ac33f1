"""BU-3DFE reader on tiny subject folders: codes, the seeded test subjects, paired ground truth, protocols, errors,
a short run and evaluation against the paired ground truth."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from datamodules.base import images_to_tensor
from datamodules.bu3dfe import EXPRESSIONS, BU3DFEDataModule
from metrics.image_quality import mse_255, psnr
from suite.errors import DatasetError
from suite.training import train
from tests.datamodules.fixtures import BU3DFE_SUBJECTS, TINY_RUN, write_bu3dfe


@pytest.fixture(scope="module")
def bu(tmp_path_factory) -> Path:
    return write_bu3dfe(tmp_path_factory.mktemp("bu") / "BU_3DFE")


def _dm(root, view="two_domain", **kw) -> BU3DFEDataModule:
    return BU3DFEDataModule(view=view, root=str(root), **{"image_size": 16, "batch_size": 4, "num_workers": 0,
                                                          "test_subjects": 3, **kw})


def test_codes_are_parsed_and_3d_files_ignored(bu):
    assert (bu / "F0001" / "F0001_AN01WH_F2D.bmp").is_file() and (bu / "F0001" / "F0001_AN01WH_F3D.wrl").is_file()
    dm = _dm(bu, "multi_factor", factors=["identity", "expression", "intensity", "gender", "race"])
    records = dm.records["train"] + dm.records["test"]
    assert len(records) == len(BU3DFE_SUBJECTS) * 25 and all(r.path.name.endswith("_F2D.bmp") for r in records)
    rec = next(r for r in records if r.path.name == "M0002_SU03BL_F2D.bmp")
    assert {k: rec.labels[k] for k in ("identity", "expression", "intensity", "gender", "race")} == {
        "identity": "M0002", "expression": "surprise", "intensity": 3, "gender": "male", "race": "BL"}
    train_races = {r.labels["race"] for r in dm.records["train"]}  # race is per subject: classes from the train split
    assert dm.info["factor_sizes"] == {"identity": 9, "expression": 7, "intensity": 5, "gender": 2, "race": len(train_races)}
    assert dm.info["factor_values"]["race"] == sorted(train_races)


def test_test_subjects_are_drawn_as_the_disent_script_does(bu):
    subjects = sorted(BU3DFE_SUBJECTS)
    expected = sorted(np.array(subjects)[np.random.RandomState(1234).permutation(len(subjects))[:3]])
    dm = _dm(bu, "multi_factor")
    assert dm.protocol == "disent" and dm.info["heldout_identities"] == expected
    assert {r.labels["identity"] for r in dm.records["test"]} == set(expected)
    assert not {r.labels["identity"] for r in dm.records["train"]} & set(expected)
    assert dm.preprocess.crop_box(512, 512) == (2, 2, 510, 510)  # -shave 2x2
    assert _dm(bu, "multi_factor", test_subjects=["F0001", "M0006"]).info["heldout_identities"] == ["F0001", "M0006"]


def test_aggan_protocol_pairs_neutral_with_the_same_subjects_happy_image(bu):
    dm = _dm(bu)
    assert dm.protocol == "aggan" and dm.info["domain_names"] == ["neutral", "happy"] and dm.info["has_gt"]
    assert dm.preprocess.crop_box(512, 512) == (0, 0, 512, 512)
    assert {r.labels["intensity"] for r in dm.records["train"] if r.labels["expression"] == "happy"} == {4}
    test = dm.dataset("test")
    for k in range(len(test)):
        plan = test.plan(k, 0)
        src, gt = test.records[plan.src], test.records[plan.gt]
        assert src.labels["expression"] == "neutral" and gt.labels["expression"] == "happy"
        assert gt.labels["identity"] == src.labels["identity"] and gt.path.name[6:10] == "HA04"
        item = test[k]
        assert torch.equal(item["gt"], images_to_tensor(dm.preprocess(gt.path)[None])[0])
    train = dm.dataset("train")
    key = next(k for k in range(len(train)) if train.plan(k, 0).flip_src)
    item, plan = train[key], train.plan(key, 0)
    assert torch.equal(item["gt"], train._load(plan.gt, flip=True))  # flipped as its source
    batch = next(iter(dm.train_dataloader()))
    assert batch["gt"].shape == batch["image"].shape == (4, 3, 16, 16)
    back = _dm(bu, direction="b2a").dataset("test")
    assert back.records[back.plan(0, 0).gt].labels["expression"] == "neutral"


def test_multi_domain_gt_keeps_the_intensity(bu):
    dm = _dm(bu, "multi_domain", protocol="disent")
    assert dm.info["domain_names"] == list(EXPRESSIONS) and len(EXPRESSIONS) == 7
    ds = dm.dataset("train")
    for k in range(0, len(ds), 7):
        plan = ds.plan(k, 0)
        src, gt = ds.records[plan.src], ds.records[plan.gt]
        assert gt.labels["identity"] == src.labels["identity"]
        assert gt.labels["expression"] == dm.domain_names[plan.labels["tgt_dom"]]
        if src.labels["expression"] != "neutral" and gt.labels["expression"] != "neutral":
            assert gt.labels["intensity"] == src.labels["intensity"]


def test_unknown_expression_name_and_code(bu, tmp_path):
    with pytest.raises(DatasetError, match=r"no expression 'smile'; valid choices are angry, disgust, fear, happy"):
        _dm(bu, expressions=["neutral", "smile"])
    shutil.copytree(bu / "F0001", tmp_path / "F0001")
    shutil.copy(bu / "F0001" / "F0001_HA01WH_F2D.bmp", tmp_path / "F0001" / "F0001_XX01WH_F2D.bmp")
    with pytest.raises(DatasetError, match=r"F0001_XX01WH_F2D.bmp has the expression code XX; valid codes are AN \(angry\)"):
        _dm(tmp_path)


def test_layout_errors(tmp_path):  # a missing root: tests/datamodules/test_roots.py
    (tmp_path / "x").mkdir()
    with pytest.raises(DatasetError, match=r"no subject folders"):
        _dm(tmp_path / "x")


def test_empty_split_is_refused(bu):
    with pytest.raises(DatasetError, match=r"the train split is empty \(12 subjects drawn with seed 1234"):
        _dm(bu, test_subjects=12)


def test_truncated_ground_truth_is_skipped_with_its_source(tmp_path, bu):
    root = tmp_path / "bu"
    shutil.copytree(bu, root)
    dm = _dm(root, test_subjects=3, on_bad_image="skip")
    test = dm.dataset("test")
    victim = test.records[test.plan(0, 0).gt].path
    victim.write_bytes(victim.read_bytes()[:100])
    with pytest.warns(UserWarning, match=victim.name):
        item = test[0]
    plan = test.plan(0, 0)  # the next neutral image of the pool and its own partner stand in
    pool = test.pools[0]
    stand_in = pool[(pool.index(plan.src) + 1) % len(pool)]
    assert torch.equal(item["image"], test._load(stand_in, flip=False))
    assert torch.equal(item["gt"], test._load(test.partner(stand_in, plan), flip=False))
    assert dm.skipped_images() == [str(victim)]


def test_short_run_and_paired_metrics_on_bu3dfe(make_cfg, bu):
    overrides = [o for o in TINY_RUN if "fast_dev_run" not in o]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = train(make_cfg("data=bu3dfe", f"data.root={bu}", *overrides, "data.test_subjects=3",
                                "trainer.max_steps=1"))
    assert result["iteration"] == 1 and result["datamodule"].info["has_gt"]
    module, dm = result["module"].eval(), result["datamodule"]
    batch = next(iter(dm.test_dataloader()))  # what evaluate.py does with a batch that carries gt
    with torch.no_grad():
        fake = module.translate(batch["image"], module.sample_target(batch))["image"].clamp(-1, 1)
    for value in (psnr(fake, batch["gt"]), mse_255(fake, batch["gt"]), psnr(batch["image"], batch["gt"])):
        assert value.shape == (batch["image"].shape[0],) and torch.isfinite(value).all()


def test_sources_without_a_partner_are_left_out_with_a_warning(tmp_path, bu):
    root = tmp_path / "bu"
    shutil.copytree(bu, root)
    (root / "F0001" / "F0001_HA04WH_F2D.bmp").unlink()
    with pytest.warns(UserWarning, match=r"1 source image\(s\) have no identity-matched image"):
        dm = _dm(root, test_subjects=["M0006"])
    assert "F0001" not in {dm.dataset("train").records[i].labels["identity"] for i in dm.dataset("train")._items}
