"""CelebA-HQ reader: the CelebAMask-HQ form (attributes, mapping, CelebA partition), StarGAN v2's folders, the
pre-resized cache, errors, a short run."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from datamodules import images
from datamodules.celeba_hq import CelebAHQDataModule
from suite.errors import DatasetError
from suite.training import build_datamodule
from tests.conftest import compose_config
from tests.datamodules.fixtures import CELEBA_ATTRIBUTES, train_once, write_celeba_hq, write_celeba_hq_v2

N = 16


@pytest.fixture(scope="module")
def hq(tmp_path_factory) -> tuple[Path, Path, dict]:
    base = tmp_path_factory.mktemp("hq")
    truth = write_celeba_hq(base / "CelebAMask-HQ", n=N, celeba_root=base / "celeba")
    return base, base / "celeba", truth


@pytest.fixture(scope="module")
def v2(tmp_path_factory) -> Path:
    return write_celeba_hq_v2(tmp_path_factory.mktemp("v2"))


def _dm(root, view="two_domain", **kw) -> CelebAHQDataModule:
    return CelebAHQDataModule(view=view, root=str(root), **{"image_size": 16, "batch_size": 2, "num_workers": 0,
                                                            "test_size": 6, **kw})


def test_mask_form_labels_and_seeded_split(hq):
    base, _, truth = hq
    anno = (base / "CelebAMask-HQ" / "CelebAMask-HQ-attribute-anno.txt").read_text().splitlines()
    assert anno[0] == str(N) and anno[2].startswith("0.jpg  ")  # two spaces after the name
    dm = _dm(base)  # the parent of CelebAMask-HQ/ works as the root
    assert dm.info["layout"] == "mask" and dm.protocol == "spm"
    order = list(range(N))
    random.Random(1234).shuffle(order)
    assert {r.path.name for r in dm.records["test"]} == {f"{i}.jpg" for i in order[:6]}
    smiling = CELEBA_ATTRIBUTES.index("Smiling")
    for r in dm.records["train"] + dm.records["test"]:
        i = int(r.path.stem)
        assert r.labels["domain"] == ("Smiling" if truth["attrs"][i, smiling] == 1 else "not_Smiling")
    assert dm.preprocess.crop_box(1024, 1024) == (0, 0, 1024, 1024)


def test_official_protocol_maps_to_the_celeba_partition(hq, monkeypatch):
    base, celeba, truth = hq
    partition = celeba / "Eval" / "list_eval_partition.txt"
    dm = _dm(base, "multi_attribute", protocol="official", partition_file=str(partition), attributes=["Male", "Young"])
    for split, code in (("train", 0), ("val", 1), ("test", 2)):
        assert {r.path.name for r in dm.records[split]} == {f"{i}.jpg" for i in range(N) if truth["split"][i] == code}
    i = int(dm.records["test"][0].path.stem)
    expected = (truth["attrs"][i, [CELEBA_ATTRIBUTES.index("Male"), CELEBA_ATTRIBUTES.index("Young")]] == 1)
    assert torch.equal(dm.dataset("test")[0]["attrs"], torch.tensor(expected.astype(np.float32)))
    monkeypatch.setenv("CELEBA_ROOT", str(celeba))  # found through the CelebA copy
    assert _dm(base, protocol="official").info["split_sizes"]["test"] > 0
    monkeypatch.delenv("CELEBA_ROOT")
    with pytest.raises(DatasetError, match=r"needs CelebA's list_eval_partition.txt.*data.partition_file"):
        _dm(base, protocol="official")


def test_stargan_v2_folders(v2):
    dm = _dm(v2.parent, attribute="Male")
    assert dm.info["layout"] == "stargan_v2" and dm.protocol == "stargan_v2"
    assert dm.info["domain_names"] == ["female", "male"]
    assert len(dm.records["train"]) == 12 and len(dm.records["test"]) == 6
    assert {r.path.parent.parent.name for r in dm.records["test"]} == {"val"}
    assert all(r.labels["domain"] == r.path.parent.name for r in dm.records["train"])
    batch = next(iter(_dm(v2, "multi_attribute").train_dataloader()))
    assert batch["attrs"].shape == (2, 1)
    with pytest.raises(DatasetError, match=r"has no attribute 'Smiling'; valid choices are Male"):
        _dm(v2)
    with pytest.raises(DatasetError, match=r"protocol spm needs the CelebAMask-HQ form"):
        _dm(v2, attribute="Male", protocol="spm")


def test_mapping_errors(tmp_path, hq):
    base, celeba, _ = hq
    shutil.copytree(base / "CelebAMask-HQ", tmp_path / "m")
    mapping = tmp_path / "m" / "CelebA-HQ-to-CelebA-mapping.txt"
    partition = str(celeba / "Eval" / "list_eval_partition.txt")
    lines = mapping.read_text().splitlines()
    mapping.write_text("\n".join([lines[0], lines[1], "2 notanumber 000003.jpg", *lines[3:]]) + "\n")
    with pytest.raises(DatasetError, match=rf"line 3 of {mapping} is malformed"):
        _dm(tmp_path / "m", protocol="official", partition_file=partition)
    mapping.unlink()
    with pytest.raises(DatasetError, match=r"annotation file .*CelebA-HQ-to-CelebA-mapping.txt is missing"):
        _dm(tmp_path / "m", protocol="official", partition_file=partition)
    (tmp_path / "m" / "CelebAMask-HQ-attribute-anno.txt").unlink()
    with pytest.raises(DatasetError, match=r"CelebAMask-HQ-attribute-anno.txt is missing"):
        _dm(tmp_path / "m")


def test_cache_stores_resized_images_once_and_reads_them_back(hq, tmp_path, monkeypatch):
    base, _, _ = hq
    plain = _dm(base)
    cached = _dm(base, cache_dir=str(tmp_path / "cache"), cache_format="png")
    ds, ref = cached.dataset("train"), plain.dataset("train")
    first = [ds[k] for k in range(2 * len(ds))]  # two epochs: flips differ
    entries = sorted((tmp_path / "cache").rglob("*.jpg.png"))
    plans = [ds.plan(k % len(ds), k // len(ds)) for k in range(2 * len(ds))]
    visited = {ds.records[r].path.name for p in plans for r in (p.src, p.ref)}
    assert {e.name[: -len(".png")] for e in entries} == visited and all(e.stat().st_size > 0 for e in entries)
    assert (entries[0].parent.parent.parent / "settings.json").is_file()
    for k in range(2 * len(ds)):
        assert torch.equal(first[k]["image"], ref[k]["image"]) and torch.equal(first[k]["ref"], ref[k]["ref"])

    def no_decoding(self, path, flip=False):
        raise AssertionError(f"decoded {path} again")

    monkeypatch.setattr(images.Preprocess, "__call__", no_decoding)
    again = [ds[k] for k in range(2 * len(ds))]
    assert all(torch.equal(a["image"], b["image"]) for a, b in zip(first, again))
    monkeypatch.undo()
    other = _dm(base, cache_dir=str(tmp_path / "cache"), cache_format="png", image_size=24)  # other settings → another folder
    other.dataset("train")[0]
    assert len(list((tmp_path / "cache").iterdir())) == 2
    npy = _dm(base, cache_dir=str(tmp_path / "npy")).dataset("train")  # the default format
    assert torch.equal(npy[3]["image"], ref[3]["image"]) and list((tmp_path / "npy").rglob("*.jpg.npy"))


def test_preset_selects_celeba_hq(hq):
    base, _, _ = hq
    cfg = compose_config(["run_dir=/tmp/x", "experiment=spm_celeba_hq_hr", f"data.root={base}", "data.test_size=6"])
    assert cfg.data.name == "celeba_hq" and cfg.data.image_size == 256
    assert build_datamodule(cfg, cfg.method.view).info["domain_names"] == ["not_Smiling", "Smiling"]


def test_fast_dev_run_aggan_on_celeba_hq_with_cache(make_cfg, hq, tmp_path):
    base, _, _ = hq
    result = train_once(make_cfg, "celeba_hq", base, "data.test_size=6", f"data.cache_dir={tmp_path / 'c'}")
    assert result["iteration"] == 1 and list((tmp_path / "c").rglob("*.jpg.npy"))


def test_a_root_without_celeba_hq_says_what_was_looked_for(tmp_path):  # a missing root: test_roots.py
    with pytest.raises(DatasetError, match=r"no CelebA-HQ under .*looked for"):
        _dm(tmp_path)


def test_cache_fills_from_worker_processes(hq, tmp_path):
    base, _, _ = hq
    dm = _dm(base, cache_dir=str(tmp_path / "cache"), num_workers=1)
    batches = [b for b in dm.train_dataloader()]
    assert batches and list((tmp_path / "cache").rglob("*.jpg.npy"))
    assert not list((tmp_path / "cache").rglob(".tmp-*"))  # every entry renamed into place
