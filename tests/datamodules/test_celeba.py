"""CelebA reader on tiny fixtures in the release and torchvision layouts: labels, protocols, views, errors, a run."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from datamodules.celeba import BRIDGE_ATTRIBUTES, CelebADataModule
from datamodules.images import BadImageError
from suite.errors import ConfigError, DatasetError
from suite.training import build_datamodule
from tests.conftest import compose_config
from tests.datamodules.fixtures import CELEBA_ATTRIBUTES, train_once, truncate, write_celeba

N = 24


@pytest.fixture(scope="module")
def celeba(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("celeba") / "CelebA"
    return root, write_celeba(root, n=N)


def _dm(root, view="two_domain", **kw) -> CelebADataModule:
    return CelebADataModule(view=view, root=str(root), **{"image_size": 16, "batch_size": 4, "num_workers": 0,
                                                          "test_size": 8, **kw})


def _names(records) -> set[str]:
    return {r.path.name for r in records}


def test_fixture_has_the_release_format(celeba):
    root, _ = celeba
    lines = (root / "Anno" / "list_attr_celeba.txt").read_text().splitlines()
    assert lines[0] == str(N) and lines[1].split() == CELEBA_ATTRIBUTES and len(lines[1].split()) == 40
    assert lines[2].startswith("000001.jpg ") and "  1" in lines[2] and len(lines[2].split()) == 41
    assert (root / "Img" / "img_align_celeba" / "000001.jpg").is_file()
    assert (root / "Eval" / "list_eval_partition.txt").read_text().splitlines()[0] == "000001.jpg 0"


def test_two_domain_labels_follow_the_attribute_file(celeba):
    root, truth = celeba
    dm = _dm(root)
    smiling = CELEBA_ATTRIBUTES.index("Smiling")
    for record in dm.records["train"] + dm.records["test"]:
        row = truth["files"].index(record.path.name)
        assert record.labels["domain"] == ("Smiling" if truth["attrs"][row, smiling] == 1 else "not_Smiling")
    assert dm.info["domain_names"] == ["not_Smiling", "Smiling"] and dm.info["protocol"] == "spm"
    batch = next(iter(dm.train_dataloader()))
    assert (batch["domain"] == 0).all() and (batch["target"] == 1).all() and batch["image"].shape == (4, 3, 16, 16)
    assert _dm(root, direction="b2a").dataset("train")[0]["domain"] == 1


def test_spm_split_is_stargans_seed_1234_shuffle(celeba):
    root, _ = celeba
    lines = [line.rstrip() for line in open(root / "Anno" / "list_attr_celeba.txt")][2:]
    random.seed(1234)  # StarGAN's data_loader.py, as SPM's code uses it
    random.shuffle(lines)
    expected_test = {line.split()[0] for line in lines[:8]}
    dm = _dm(root)
    assert _names(dm.records["test"]) == expected_test
    assert _names(dm.records["train"]) == {line.split()[0] for line in lines[8:]}
    assert dm.preprocess.crop_box(178, 218) == (0, 20, 178, 198)  # CenterCrop(178)
    assert dm.preprocess.flip and dm.dataset("train").train


def test_torchvision_flat_layout_reads_the_same(tmp_path, celeba):
    root, _ = celeba
    write_celeba(tmp_path, n=N, form="flat", newline="\r\n")
    flat, release = _dm(tmp_path), _dm(root)
    assert flat.info["layout"] == "flat" and release.info["layout"] == "release"
    for split in ("train", "test"):
        assert [(r.path.name, r.labels) for r in flat.records[split]] == [(r.path.name, r.labels) for r in release.records[split]]


def test_bridge_protocol_attributes_partition_and_crop(celeba):
    root, truth = celeba
    dm = _dm(root, "multi_attribute", protocol="bridge_official")
    assert dm.info["attr_names"] == list(BRIDGE_ATTRIBUTES) and len(BRIDGE_ATTRIBUTES) == 14
    for split, code in (("train", 0), ("val", 1), ("test", 2)):
        assert _names(dm.records[split]) == {f for f, p in zip(truth["files"], truth["partition"]) if p == code}
    assert dm.preprocess.crop_box(178, 218) == (3, 26, 173, 196)  # 170×170 at (top 26, left 3)
    ds = dm.dataset("test")
    item = ds[1]
    cols = [CELEBA_ATTRIBUTES.index(a) for a in BRIDGE_ATTRIBUTES]
    row = truth["files"].index(ds.records[1].path.name)
    assert torch.equal(item["attrs"], torch.tensor((truth["attrs"][row, cols] == 1).astype(np.float32)))
    ref_row = truth["files"].index(ds.records[ds.plan(1, 0).ref].path.name)
    assert torch.equal(item["target_attrs"], torch.tensor((truth["attrs"][ref_row, cols] == 1).astype(np.float32)))
    batch = next(iter(dm.train_dataloader()))
    assert batch["attrs"].shape == (4, 14) and batch["attrs"].dtype == torch.float32
    assert set(batch["attrs"].unique().tolist()) <= {0.0, 1.0}
    named = _dm(root, "multi_attribute", protocol="bridge_official", attributes=["Smiling", "Male"])
    assert named.info["attr_names"] == ["Smiling", "Male"]


def test_aggan_protocol_takes_per_domain_images_for_train_and_test(celeba):
    root, _ = celeba
    dm = _dm(root, protocol="aggan", per_domain=3)
    for split in ("train", "test"):
        domains = [r.labels["domain"] for r in dm.records[split]]
        assert sorted(domains) == ["Smiling"] * 3 + ["not_Smiling"] * 3
    assert not _names(dm.records["train"]) & _names(dm.records["test"])
    with pytest.raises(DatasetError, match=r"2 × 20 .*has 12; lower data.per_domain"):
        _dm(root, protocol="aggan", per_domain=20)


def test_multi_domain_uses_images_with_exactly_one_hair_colour(celeba):
    root, _ = celeba
    dm = _dm(root, "multi_domain")
    assert dm.info["domain_names"] == ["Black_Hair", "Blond_Hair", "Brown_Hair"]
    kept = dm.records["train"] + dm.records["test"]
    assert len(kept) == N - N // 4  # rows 4k+3 have two hair colours
    assert all((int(r.path.stem) - 1) % 4 == ["Black_Hair", "Blond_Hair", "Brown_Hair"].index(r.labels["domain"]) for r in kept)


def test_experiment_presets_select_celeba(celeba):
    root, _ = celeba
    cfg = compose_config(["run_dir=/tmp/x", "experiment=spm_celeba_big_nose", f"data.root={root}", "data.test_size=8"])
    assert cfg.data.name == "celeba" and cfg.data.protocol == "spm" and cfg.data.attribute == "Big_Nose"
    dm = build_datamodule(cfg, cfg.method.view)
    assert dm.info["domain_names"] == ["not_Big_Nose", "Big_Nose"] and dm.image_size == 128
    for experiment in ("sat_celeba_smile", "stargan_celeba", "spm_celeba"):
        cfg = compose_config(["run_dir=/tmp/x", f"experiment={experiment}"])
        assert cfg.data.name == "celeba" and cfg.data.attribute == "Smiling"


# ---------------------------------------------------------------------------------------------- errors
def test_a_root_without_images_says_what_was_looked_for(tmp_path):  # a missing root: tests/datamodules/test_roots.py
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"no CelebA image folder .*looked for"):
        _dm(tmp_path / "empty")


@pytest.fixture
def copy(tmp_path, celeba) -> Path:
    root, _ = celeba
    shutil.copytree(root, tmp_path / "c")
    return tmp_path / "c"


def test_missing_annotation_file_is_named(copy):
    (copy / "Anno" / "list_attr_celeba.txt").unlink()
    with pytest.raises(DatasetError, match=r"annotation file .*Anno/list_attr_celeba.txt is missing"):
        _dm(copy)
    write_celeba(copy, n=N)
    (copy / "Eval" / "list_eval_partition.txt").unlink()
    _dm(copy)  # the spm protocol does not need the partition
    with pytest.raises(DatasetError, match=r"annotation file .*Eval/list_eval_partition.txt is missing"):
        _dm(copy, protocol="official")


def test_malformed_lines_report_file_and_line_number(copy):
    path = copy / "Anno" / "list_attr_celeba.txt"
    lines = path.read_text().splitlines()
    lines[6] = lines[6].rsplit(" ", 3)[0]  # row of 000005.jpg loses values: line 7
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=rf"line 7 of {path} is malformed: expected an image name and 40 values"):
        _dm(copy)
    write_celeba(copy, n=N)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-3]) + "\n")  # rows cut: the count on line 1 disagrees
    with pytest.raises(DatasetError, match=r"declares 24 images on line 1 but lists"):
        _dm(copy, "multi_attribute")
    partition = copy / "Eval" / "list_eval_partition.txt"
    write_celeba(copy, n=N)
    partition.write_text(partition.read_text().replace("000003.jpg 0", "000003.jpg 7"))
    with pytest.raises(DatasetError, match=rf"line 3 of {partition} is malformed"):
        _dm(copy, protocol="official")


def test_unknown_attribute_lists_the_valid_ones(celeba):
    root, _ = celeba
    with pytest.raises(DatasetError, match="Smilling") as err:
        _dm(root, attribute="Smilling")
    assert "5_o_Clock_Shadow" in str(err.value) and "Young" in str(err.value)
    with pytest.raises(DatasetError, match="Bald_Head"):
        _dm(root, "multi_attribute", attributes=["Male", "Bald_Head"])


def test_missing_images_stop_or_are_left_out(copy):
    (copy / "Img" / "img_align_celeba" / "000004.jpg").unlink()
    with pytest.raises(DatasetError, match=r"1 of the 24 images listed in .* are missing .*first: 000004.jpg"):
        _dm(copy)
    with pytest.warns(UserWarning, match="left out"):
        dm = _dm(copy, on_bad_image="skip")
    assert "000004.jpg" not in _names(dm.records["train"] + dm.records["test"])


def test_empty_split_is_refused(celeba):
    root, _ = celeba
    with pytest.raises(DatasetError, match=r"the train split is empty \(the first 30 of the 24 rows"):
        _dm(root, test_size=30)


def test_truncated_image_stops_naming_the_file(copy):
    bad = truncate(copy / "Img" / "img_align_celeba" / "000002.jpg")
    dm = _dm(copy, test_size=2, batch_size=2)
    with pytest.raises(BadImageError, match="000002.jpg") as err:
        for split in ("train", "test"):
            ds = dm.dataset(split)
            for i in range(len(ds)):
                ds[i]
    assert str(bad) in str(err.value) and "on_bad_image=skip" in str(err.value)


def test_fast_dev_run_aggan_on_celeba(make_cfg, celeba):
    root, _ = celeba
    result = train_once(make_cfg, "celeba", root, "data.test_size=8")
    assert result["iteration"] == 1 and result["datamodule"].info["domain_names"] == ["not_Smiling", "Smiling"]


def test_bridge_protocol_splits_by_file_row_as_the_authors(celeba):
    """data_noise_in.py: rows [:182000] train, [182000:182637] val, the rest test, whatever the partition says."""
    root, truth = celeba
    with pytest.raises(DatasetError, match=r"test split is empty \(rows \[0, 182000\) train"):
        _dm(root, "multi_attribute")  # the fixture's 24 rows all fall in the authors' training rows
    dm = _dm(root, "multi_attribute", bridge_rows=[5, 7])
    assert dm.protocol == "bridge"
    assert [r.path.name for r in dm.records["train"]] == truth["files"][:5]
    assert [r.path.name for r in dm.records["val"]] == truth["files"][5:7]
    assert [r.path.name for r in dm.records["test"]] == truth["files"][7:]
    assert dm.info["split_sizes"]["train"] == 5
    item = dm.dataset("train")[3]
    assert item["index"].item() == 3 and 0 <= item["ref_index"].item() < 5 and item["ref_index"].item() != 3
    with pytest.raises(ConfigError, match="bridge_rows"):
        _dm(root, "multi_attribute", bridge_rows=[7, 5])
