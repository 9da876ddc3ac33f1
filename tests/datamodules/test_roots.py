"""Every real dataset finds its folder the same way (datamodules.layouts.resolve_root): ``data.root``, else its
environment variable; an unset or missing location is one sentence naming the path tried, the variable and the
files the reader expected."""

from __future__ import annotations

import pytest

from datamodules.afhq import AFHQDataModule
from datamodules.arface import ARFaceDataModule
from datamodules.bu3dfe import BU3DFEDataModule
from datamodules.celeba import CelebADataModule
from datamodules.celeba_hq import CelebAHQDataModule
from datamodules.digits import DigitsDataModule
from datamodules.folder import FolderDataModule
from datamodules.maps import MapsDataModule
from datamodules.multipie import MultiPIEDataModule
from datamodules.rafd import RaFDDataModule
from suite.errors import DatasetError

# Each class with a fragment of the layout its error message must show (the file or folder names a user looks for).
REAL = [
    (AFHQDataModule, r"train/{cat,dog,wild}"),
    (ARFaceDataModule, "M-001-01.raw"),
    (BU3DFEDataModule, "F0001_AN01WH_F2D.bmp"),
    (CelebADataModule, "Img/img_align_celeba"),
    (CelebAHQDataModule, "CelebA-HQ-img/0.jpg"),
    (DigitsDataModule, "MNIST/raw/"),
    (FolderDataModule, "trainA"),
    (MapsDataModule, "train/<n>.jpg"),
    (MultiPIEDataModule, "session0{1-4}/multiview"),
    (RaFDDataModule, "Rafd{angle}_{model}"),
]


@pytest.mark.parametrize("cls,layout", REAL, ids=[c.name for c, _ in REAL])
def test_a_missing_root_names_the_path_and_the_layout(cls, layout, tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetError) as err:
        cls(root=str(missing), image_size=16, num_workers=0)
    message = str(err.value)
    assert str(missing) in message and layout in message


@pytest.mark.parametrize("cls,layout", [r for r in REAL if r[0].env_var], ids=[c.name for c, _ in REAL if c.env_var])
def test_the_environment_variable_is_named_and_read(cls, layout, tmp_path, monkeypatch):
    monkeypatch.delenv(cls.env_var, raising=False)
    with pytest.raises(DatasetError) as err:
        cls(image_size=16, num_workers=0)
    assert cls.env_var in str(err.value) and "data.root=<dir>" in str(err.value) and layout in str(err.value)
    monkeypatch.setenv(cls.env_var, str(tmp_path / "elsewhere"))
    with pytest.raises(DatasetError) as err:
        cls(image_size=16, num_workers=0)
    assert str(tmp_path / "elsewhere") in str(err.value) and layout in str(err.value)


def test_folder_has_no_environment_variable(tmp_path):
    with pytest.raises(DatasetError, match=r"location is not set \(pass data.root=<dir>\)"):
        FolderDataModule(image_size=16, num_workers=0)
