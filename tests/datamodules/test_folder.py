"""Folder reader: CycleGAN's trainA/trainB, split folders, one folder per class; views, errors, a short run."""

from __future__ import annotations

from pathlib import Path

import pytest

from datamodules.folder import FolderDataModule
from suite.errors import ConfigError, DatasetError
from suite.training import build_datamodule
from tests.conftest import compose_config
from tests.datamodules.fixtures import train_once, write_afhq, write_class_folders, write_cyclegan


@pytest.fixture(scope="module")
def cyclegan(tmp_path_factory) -> Path:
    return write_cyclegan(tmp_path_factory.mktemp("folder") / "horse2zebra")


def _dm(root, view="two_domain", **kw) -> FolderDataModule:
    return FolderDataModule(view=view, root=str(root), **{"image_size": 16, "batch_size": 2, "num_workers": 0, **kw})


def test_cyclegan_layout(cyclegan):
    for domains in (None, ["trainA", "trainB"], ["A", "B"]):
        dm = _dm(cyclegan, domains=domains)
        assert dm.info["layout"] == "cyclegan" and dm.info["domain_names"] == ["A", "B"]
        assert {r.path.parent.name for r in dm.records["train"]} == {"trainA", "trainB"}
        assert {r.path.parent.name for r in dm.records["test"]} == {"testA", "testB"}
        assert all(r.labels["domain"] == r.path.parent.name[-1] for r in dm.records["test"])
    b2a = _dm(cyclegan, domains=["trainB", "trainA"])
    assert b2a.info["domain_names"] == ["B", "A"] and b2a.dataset("train").records[b2a.dataset("train")._items[0]].labels["domain"] == "B"
    assert _dm(cyclegan).preprocess.crop_box(300, 200) == (0, 0, 300, 200)  # the whole image, resized


def test_split_folders_and_class_folders(tmp_path):
    dm = _dm(write_afhq(tmp_path / "a", version=1), "multi_domain")
    assert dm.info["layout"] == "split" and dm.info["domain_names"] == ["cat", "dog", "wild"]
    assert len(dm.records["test"]) == 6
    root = write_class_folders(tmp_path / "fruit", per=10)
    dm = _dm(root, "multi_attribute", test_fraction=0.2)
    assert dm.info["layout"] == "classes" and dm.info["attr_names"] == ["apple", "orange", "pear"]
    train, test = ({r.path for r in dm.records[s]} for s in ("train", "test"))
    assert len(test) == 6 and len(train) == 24 and not train & test
    assert any(p.parent.name == "nested" for p in train | test)  # subfolders are read
    assert {r.path for r in _dm(root, "multi_attribute", test_fraction=0.2).records["test"]} == test  # seeded
    assert {r.path for r in _dm(root, "multi_attribute", test_fraction=0.2, split_seed=1).records["test"]} != test
    item = dm.dataset("test")[0]
    assert item["attrs"].tolist() == [1.0 if n == dm.dataset("test").records[0].path.parts[-2] else 0.0
                                      for n in dm.info["attr_names"]]


def test_errors(tmp_path, cyclegan):
    with pytest.raises(DatasetError, match=r"location is not set \(pass data.root=<dir>\); expected two or more folders"):
        FolderDataModule(num_workers=0)
    with pytest.raises(DatasetError) as err:
        _dm(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(err.value) and "trainA/ trainB/" in str(err.value)
    write_class_folders(tmp_path / "one", classes=("apple",))
    with pytest.raises(DatasetError, match=r"holds images in 1 domain folder\(s\) \(apple\)"):
        _dm(tmp_path / "one")
    write_class_folders(tmp_path / "three")
    with pytest.raises(ConfigError, match=r"has 3 domains \(apple, orange, pear\); the two_domain view needs data.domains"):
        _dm(tmp_path / "three")
    with pytest.raises(DatasetError, match=r"no domain 'kiwi'; valid choices are apple, orange, pear"):
        _dm(tmp_path / "three", domains=["apple", "kiwi"])
    (cyclegan.parent / "onlytrain" / "trainA").mkdir(parents=True)
    (cyclegan.parent / "onlytrain" / "trainB").mkdir()
    for d in ("A", "B"):
        for f in (cyclegan / f"train{d}").iterdir():
            (cyclegan.parent / "onlytrain" / f"train{d}" / f.name).write_bytes(f.read_bytes())
    with pytest.raises(DatasetError, match=r"the test split is empty \(the folders' own split"):
        _dm(cyclegan.parent / "onlytrain")


def test_sat_horse2zebra_preset_reads_the_cyclegan_layout(cyclegan):
    cfg = compose_config(["run_dir=/tmp/x", "experiment=sat_horse2zebra", f"data.root={cyclegan}"])
    assert cfg.data.name == "folder" and list(cfg.data.domains) == ["trainA", "trainB"]
    dm = build_datamodule(cfg, cfg.method.view)
    assert dm.info["domain_names"] == ["A", "B"] and dm.image_size == 256


def test_fast_dev_run_aggan_on_folders(make_cfg, cyclegan):
    result = train_once(make_cfg, "folder", cyclegan)
    assert result["iteration"] == 1 and result["datamodule"].info["domain_names"] == ["A", "B"]
