"""MNIST, USPS and MNIST-M from torchvision's on-disk files (no download): the readers on hand-made files, the
two-domain datamodule, clear errors naming the missing files, a short run."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from datamodules.digits import DigitsDataModule
from datamodules.digits_layout import read_idx, read_usps
from datamodules.fake_layouts import idx_bytes, write_mnist, write_mnistm, write_usps
from suite.errors import DatasetError
from tests.datamodules.fixtures import train_once


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits")
    labels = {"mnist": write_mnist(root), "usps": write_usps(root), "mnistm": write_mnistm(root)}
    return root, labels


def _dm(root, domains, **kw) -> DigitsDataModule:
    return DigitsDataModule(root=str(root), domains=domains, **{"image_size": 16, "batch_size": 4, "num_workers": 0, **kw})


def test_idx_reader_on_a_hand_made_file(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "x-ubyte").write_bytes(idx_bytes(images))
    (tmp_path / "y-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.array([7, 1], np.uint8))))
    assert (read_idx(tmp_path / "x-ubyte") == images).all()
    assert read_idx(tmp_path / "y-ubyte.gz").tolist() == [7, 1]
    (tmp_path / "bad-ubyte").write_bytes(b"\x00\x00\x09\x03" + bytes(8))
    with pytest.raises(DatasetError, match="not an MNIST IDX file"):
        read_idx(tmp_path / "bad-ubyte")


def test_usps_reader_as_torchvision_reads_it(tmp_path):
    import bz2

    values = ["-1"] * 255 + ["1"]
    line = "3 " + " ".join(f"{i + 1}:{v}" for i, v in enumerate(values))
    (tmp_path / "usps.bz2").write_bytes(bz2.compress((line + "\n").encode()))
    pixels, labels = read_usps(tmp_path / "usps.bz2")
    assert labels.tolist() == [2] and pixels.shape == (1, 16, 16)
    assert pixels[0, 15, 15] == 255 and pixels[0, 0, 0] == 0  # (v + 1) / 2 · 255


@pytest.mark.parametrize("target", ["usps", "mnistm"])
def test_mnist_to_target_records_and_labels(digits, target):
    root, labels = digits
    dm = _dm(root, ["mnist", target])
    assert dm.info["domain_names"] == ["mnist", target]
    assert [r.labels["digit"] for r in dm.digits_of("train", "mnist")] == labels["mnist"]["train"].tolist()
    assert [r.labels["digit"] for r in dm.digits_of("test", target)] == labels[target]["test"].tolist()
    item = dm.dataset("train")[0]
    assert item["image"].shape == (3, 16, 16) and item["ref"].shape == (3, 16, 16)
    assert (item["image"][0] == item["image"][1]).all()  # grey MNIST as three equal channels
    assert len(dm.dataset("train")) == 20 and len(dm.dataset("test")) == 10


def test_gz_files_as_downloaded(tmp_path):
    write_mnist(tmp_path, gz=True)
    write_usps(tmp_path)
    assert len(_dm(tmp_path, ["mnist", "usps"]).digits_of("train", "mnist")) == 20


def test_missing_files_are_named(tmp_path):
    write_usps(tmp_path)
    with pytest.raises(DatasetError) as err:
        _dm(tmp_path, ["mnist", "usps"])
    assert "train-images-idx3-ubyte" in str(err.value) and "train-labels-idx1-ubyte" in str(err.value)
    write_mnist(tmp_path)
    with pytest.raises(DatasetError, match=r"mnist_m_train and .*mnist_m_train_labels.txt"):
        _dm(tmp_path, ["mnist", "mnistm"])
    (tmp_path / "usps.t.bz2").unlink()
    with pytest.raises(DatasetError, match=r"USPS's test split needs .*usps.t.bz2"):
        _dm(tmp_path, ["mnist", "usps"])
    with pytest.raises(DatasetError, match="DIGITS_ROOT"):
        DigitsDataModule(root=None, image_size=16)
    with pytest.raises(DatasetError, match="no domain 'svhn'"):
        _dm(tmp_path, ["mnist", "svhn"])


def test_a_short_run(make_cfg, digits):
    root, _ = digits
    assert train_once(make_cfg, "digits", root, "data.domains=[mnist,usps]")["iteration"] == 1
