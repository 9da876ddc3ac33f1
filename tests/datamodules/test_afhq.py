"""AFHQ reader: v1 and v2 fixtures, the 43 real AFHQ photographs in ../shared/realdata/afhq, views, errors, the
benchmark, a short run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from datamodules import bench
from datamodules.afhq import AFHQDataModule
from suite.errors import ConfigError, DatasetError
from tests.datamodules.fixtures import AFHQ_DOMAINS, train_once, write_afhq

REAL_AFHQ = Path(__file__).resolve().parents[2].parent / "shared" / "realdata" / "afhq"
REAL_COUNTS = {"train": {"cat": 10, "dog": 8, "wild": 10}, "val": {"cat": 5, "dog": 5, "wild": 5}}


@pytest.fixture(scope="module")
def afhq(tmp_path_factory) -> Path:
    return write_afhq(tmp_path_factory.mktemp("afhq"), version=1)


@pytest.fixture
def real_afhq() -> Path:
    if not (REAL_AFHQ / "train").is_dir():
        pytest.fail(
            f"the real AFHQ photographs are missing: expected {REAL_AFHQ}/{{train,val}}/{{cat,dog,wild}}/*.jpg "
            "(43 images from StarGAN v2's assets, see ../shared/realdata/afhq/SOURCE.md)"
        )
    return REAL_AFHQ


def _dm(root, view="two_domain", **kw) -> AFHQDataModule:
    return AFHQDataModule(view=view, root=str(root), **{"image_size": 16, "batch_size": 4, "num_workers": 0, **kw})


def test_v1_and_v2_layouts_and_splits(afhq, tmp_path):
    dm = _dm(afhq.parent, "multi_domain")  # the parent holding afhq/ works as the root
    assert dm.info["layout"] == "v1" and dm.info["domain_names"] == list(AFHQ_DOMAINS)
    assert len(dm.records["train"]) == 12 and len(dm.records["test"]) == 6
    assert {r.path.parent.parent.name for r in dm.records["test"]} == {"val"}
    assert all(r.labels["domain"] == r.path.parent.name for r in dm.records["train"] + dm.records["test"])
    assert all(r.path.name.split("_")[1] == r.labels["domain"] for r in dm.records["train"])
    v2 = _dm(write_afhq(tmp_path, version=2), "multi_domain")
    assert v2.info["layout"] == "v2" and {r.path.suffix for r in v2.records["test"]} == {".png"}
    assert {r.path.parent.parent.name for r in v2.records["test"]} == {"test"}


def test_domains_and_one_hot_attributes(afhq):
    two = _dm(afhq)
    assert two.info["domain_names"] == ["cat", "dog"] and two.protocol == "stargan_v2"
    assert _dm(afhq, domains=["wild", "cat"], direction="b2a").dataset("train")[0]["domain"] == 1
    attr = _dm(afhq, "multi_attribute")
    assert attr.info["attr_names"] == ["cat", "dog", "wild"]
    ds = attr.dataset("train")
    for k in range(len(ds)):
        vector = ds[k]["attrs"]
        assert vector.sum() == 1 and attr.info["attr_names"][int(vector.argmax())] == ds.records[k].path.parent.name


def test_errors(afhq, tmp_path, monkeypatch):
    with pytest.raises(DatasetError, match=r"no domain 'fox'; valid choices are cat, dog, wild"):
        _dm(afhq, domains=["cat", "fox"])
    with pytest.raises(ConfigError, match="exactly 2 domains"):
        _dm(afhq, domains=["cat", "dog", "wild"])
    monkeypatch.delenv("AFHQ_ROOT", raising=False)
    with pytest.raises(DatasetError, match=r"AFHQ_ROOT.*train/\{cat,dog,wild\}"):
        AFHQDataModule(num_workers=0)
    (tmp_path / "train" / "cat").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"has train/ but neither val/ \(v1\) nor test/ \(v2\)"):
        _dm(tmp_path)
    (tmp_path / "val").mkdir()
    with pytest.raises(DatasetError, match=r"the train split is empty \(AFHQ v1's own split"):
        _dm(tmp_path)


def test_real_afhq_photographs(real_afhq):
    dm = _dm(real_afhq, "multi_domain", image_size=64, batch_size=8)
    assert dm.info["layout"] == "v1"
    for split, counts in REAL_COUNTS.items():
        records = dm.records["train" if split == "train" else "test"]
        assert {d: sum(r.labels["domain"] == d for r in records) for d in AFHQ_DOMAINS} == counts
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (8, 3, 64, 64) and batch["image"].std() > 0.2
    test = dm.dataset("test")
    item = test[0]
    assert item["image"].shape == (3, 64, 64) and -1 <= item["image"].min() < item["image"].max() <= 1
    one_hot = _dm(real_afhq, "multi_attribute").dataset("test")
    assert torch.equal(one_hot.attrs.sum(1), torch.ones(15))


def test_bench_reports_images_per_second(real_afhq):
    rows = bench.run(["afhq-real"], batches=1, batch_size=4, workers=0, image_size=32)
    assert rows[0]["data"] == "afhq-real" and rows[0]["images"] == 4 and rows[0]["images_per_s"] > 0


def test_fast_dev_run_aggan_on_afhq(make_cfg, afhq):
    result = train_once(make_cfg, "afhq", afhq)
    assert result["iteration"] == 1 and result["datamodule"].info["domain_names"] == ["cat", "dog"]


def test_bridge_recipe_end_to_end_on_real_afhq_photographs(make_cfg, real_afhq, tmp_path):
    """The real-data path of the bridge (issue 6): bridge_afhq on the 43 photographs, tiny nets at 32 px, two
    iterations, then evaluation in both modes. Too few images to learn: it proves reading, training and scoring."""
    from suite.evaluation import evaluate_checkpoint
    from suite.training import train
    from tests.lightning_modules.test_bridge import TINY as BRIDGE_TINY

    cfg = make_cfg("experiment=bridge_afhq", f"data.root={real_afhq}", "data.image_size=32", "data.batch_size=4",
                   "data.num_workers=0", "trainer.max_steps=2", *BRIDGE_TINY, run_dir=tmp_path / "run")
    result = train(cfg)
    assert result["iteration"] == 2
    assert result["datamodule"].info["attr_names"] == ["cat", "dog", "wild"]
    metrics = evaluate_checkpoint(result["checkpoint"], tmp_path / "eval", batch_size=8)
    assert 0.0 <= metrics["label/accuracy"] <= 1.0 and 0.0 <= metrics["reference/accuracy"] <= 1.0
    assert metrics["label/diversity"] >= 0.0
    assert metrics["reference/accuracy/n"] > 0 and (tmp_path / "eval" / "grid.png").is_file()
