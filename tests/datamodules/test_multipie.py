"""Multi-PIE reader on a tiny multiview tree: labels from names and (session, recording), the disent protocol,
views, errors, a short run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from datamodules.base import UNSEEN_CLASS
from datamodules.multipie import MultiPIEDataModule
from datamodules.multipie_layout import scan
from suite.errors import ConfigError, DatasetError
from tests.datamodules.fixtures import multipie_path, train_once, write_multipie

SUBJECTS = tuple(range(1, 13))


@pytest.fixture(scope="module")
def multipie(tmp_path_factory) -> Path:
    return write_multipie(tmp_path_factory.mktemp("mpie") / "Multi-Pie", subjects=SUBJECTS)


def _dm(root, view="multi_factor", **kw) -> MultiPIEDataModule:
    return MultiPIEDataModule(view=view, root=str(root), **{"image_size": 16, "batch_size": 4, "num_workers": 0, **kw})


def test_names_and_folders_give_the_labels(multipie):
    path = multipie_path(multipie, 12, 2, 3, "05_1", 7)
    assert path.relative_to(multipie).as_posix() == "data/session02/multiview/012/03/05_1/012_02_03_051_07.png"
    records = scan(multipie, ("05_1",))
    assert len(records) == len(SUBJECTS) * 11 * 2 and {r.camera for r in records} == {"05_1"}
    rec = next(r for r in records if r.path == path)
    assert (rec.subject, rec.session, rec.recording, rec.illumination, rec.expression) == (12, 2, 3, 7, "squint")
    expression = {(r.session, r.recording): r.expression for r in records}
    assert expression[(4, 2)] == "neutral" and expression[(3, 2)] == "smile" and expression[(4, 3)] == "scream"
    assert len(scan(multipie / "data", ("05_1", "14_0"))) == 2 * len(records)  # the data/ folder itself as root


def test_disent_protocol_split_factors_and_crop(multipie):
    dm = _dm(multipie)
    assert dm.info["heldout_identities"] == list(range(1, 11))  # the first 10 subjects
    assert {r.labels["identity"] for r in dm.records["train"]} == {11, 12}
    assert {r.labels["expression"] for r in dm.records["train"]} == {"neutral", "scream", "squint", "surprise"}
    assert {r.labels["camera"] for r in dm.records["test"]} == {"05_1"}
    # 4 expressions: neutral has 5 (session, recording) pairs, the others 1 → 8 pairs × 2 lights per subject
    assert len(dm.records["train"]) == 2 * 8 * 2 and len(dm.records["test"]) == 10 * 8 * 2
    assert dm.info["factor_sizes"] == {"identity": 2, "expression": 4, "illumination": 2}  # C_id: training subjects
    assert dm.preprocess.crop_box(640, 480) == (210, 0, 430, 220)  # -gravity North -crop 220x220+0+0
    assert not dm.preprocess.flip
    batch = next(iter(dm.train_dataloader()))
    assert set(batch["factors"]) == {"identity", "expression", "illumination"} and batch["image"].shape == (4, 3, 16, 16)
    values = dm.info["factor_values"]
    first = dm.dataset("train").records[0]
    item = dm.dataset("test")[0]
    assert values["identity"] == [11, 12] and int(item["factors"]["identity"]) == UNSEEN_CLASS  # a held-out subject
    assert values["identity"][int(dm.dataset("train")[0]["factors"]["identity"])] == first.labels["identity"]


def test_domain_views(multipie):
    two = _dm(multipie, "two_domain")
    assert two.info["domain_names"] == ["neutral", "smile"]
    assert all(r.labels["expression"] == "neutral" for r in two.dataset("train").records if r.labels["domain"] == "neutral")
    many = _dm(multipie, "multi_domain", illuminations=[7], cameras=["14_0"], test_subjects=[1, 2])
    assert many.info["domain_names"] == ["neutral", "scream", "squint", "surprise"]
    assert {r.labels["illumination"] for r in many.records["train"]} == {7}
    assert many.info["heldout_identities"] == [1, 2]
    batch = next(iter(many.train_dataloader()))
    assert (batch["domain"] != batch["target"]).all() and torch.equal(batch["target"], batch["ref_domain"])
    with pytest.raises(ConfigError, match="exactly 2 expressions"):
        _dm(multipie, "two_domain", expressions=["neutral", "smile", "scream"])


def test_unknown_names_list_the_valid_ones(multipie):
    with pytest.raises(DatasetError, match=r"no expression 'yawn'; valid choices are neutral, smile, surprise, squint"):
        _dm(multipie, expressions=["neutral", "yawn"])
    with pytest.raises(DatasetError, match=r"no camera '05_2'; valid choices are 24_0"):
        _dm(multipie, cameras=["05_2"])


def test_layout_errors(tmp_path, multipie):  # a missing root: tests/datamodules/test_roots.py
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"no Multi-PIE session folders"):
        _dm(tmp_path / "empty")
    root = tmp_path / "m"
    shutil.copytree(multipie / "data" / "session01", root / "data" / "session01")
    good = multipie_path(root, 1, 1, 1, "05_1", 0)
    good.rename(good.with_name("001_01_01_051_00_copy.png"))
    with pytest.raises(DatasetError, match=r"contradicts its folders; expected 001_01_01_051_<illumination>.png"):
        _dm(root)


def test_empty_split_is_refused(multipie):
    with pytest.raises(DatasetError, match=r"the train split is empty \(subjects \[1, 2, .*12\] are the test split"):
        _dm(multipie, test_subjects=12)


def test_fast_dev_run_aggan_on_multipie(make_cfg, multipie):
    result = train_once(make_cfg, "multipie", multipie)
    assert result["iteration"] == 1 and result["datamodule"].info["domain_names"] == ["neutral", "smile"]
