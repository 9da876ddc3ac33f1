"""pix2pix maps reader: side-by-side halves as the photo and map domains, SAT's Table 2 protocol (train photos +
test-set maps, unpaired; test photos with their own map as gt), errors, a short run."""

from __future__ import annotations

import numpy as np
import pytest

from datamodules.fake_layouts import write_maps
from datamodules.maps import MapsDataModule
from datamodules.parts import split_part
from suite.errors import DatasetError
from tests.datamodules.fixtures import train_once


@pytest.fixture(scope="module")
def maps(tmp_path_factory):
    return write_maps(tmp_path_factory.mktemp("maps"), train=4, val=3, size=32)


def _dm(root, **kw) -> MapsDataModule:
    return MapsDataModule(root=str(root), **{"image_size": 24, "batch_size": 2, "num_workers": 0, "flip": False, **kw})


def test_sat_protocol_trains_on_train_photos_and_test_set_maps(maps):
    dm = _dm(maps)
    train = [(split_part(r.path)[0].parent.name, split_part(r.path)[1], r.labels["domain"]) for r in dm.records["train"]]
    assert train.count(("train", "left", "photo")) == 4 and train.count(("val", "right", "map")) == 3
    assert len(train) == 7 and dm.info["domain_names"] == ["photo", "map"] and dm.info["has_gt"]
    test = dm.dataset("test")
    assert len(test) == 3  # the val photos, each with its own map
    paired = _dm(maps, protocol="paired_split")
    assert sorted({split_part(r.path)[0].parent.name for r in paired.records["train"]}) == ["train"]


def test_halves_and_ground_truth_are_the_same_place(maps):
    """The fixture's map is the photo inverted: the gt of each test photo is its own right half."""
    item = _dm(maps).dataset("test")[1]
    assert item["image"].shape == (3, 24, 24) and "gt" in item
    assert (item["gt"] + item["image"]).abs().mean() < 0.05  # 255 − p ↔ −x in [−1, 1], JPEG aside
    other = _dm(maps).dataset("test")[0]["gt"]
    assert (other + item["image"]).abs().mean() > 0.2  # another place's map


def test_training_items_are_unpaired(maps):
    item = _dm(maps).dataset("train")[0]
    assert "gt" not in item and set(item) >= {"image", "ref"}


def test_missing_folders_name_the_layout(tmp_path):
    (tmp_path / "train").mkdir()
    with pytest.raises(DatasetError, match=r"no numbered images in .*train .*photo \(left half\)"):
        _dm(tmp_path)
    with pytest.raises(DatasetError, match="MAPS_ROOT"):
        MapsDataModule(root=None, image_size=16)


def test_a_short_run(make_cfg, maps):
    result = train_once(make_cfg, "maps", maps, "data.flip=false")
    assert result["iteration"] == 1


def test_halves_of_an_odd_width_pair(tmp_path):
    from PIL import Image

    pixels = np.zeros((10, 21, 3), np.uint8)
    pixels[:, 10:] = 200
    for split in ("train", "val"):
        (tmp_path / split).mkdir()
        Image.fromarray(pixels).save(tmp_path / split / "1.png")
    dm = _dm(tmp_path, image_size=10)
    photo, gt = dm.dataset("test")[0]["image"], dm.dataset("test")[0]["gt"]
    assert photo.max() < -0.99 and gt.min() > 0.5  # the middle column belongs to neither half's wrong side
