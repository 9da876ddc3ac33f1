"""The disent presets' identity classes on trees with the papers' subject counts (issue 22): C_id has one output
per *training* subject — MultiPIE 157 − 10 = 147 (Sec. IV-B2), RaFD 67 − 8 = 59, BU-3DFE 100 − 10 = 90 — the
counts the authors' OneHotEncoder fits on their training labels."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from datamodules.fake_layouts import bu3dfe_files, write_multipie
from suite.training import build_datamodule
from tests.datamodules.test_rafd import write_rafd

RAFD_MODELS = {m: ("Caucasian", "female") for m in range(1, 68)}  # 67 models, the test ones among them


def _bu3dfe_names_only(root):
    """BU-3DFE's 100 subject folders with their 25 textures each, one tiny bitmap's bytes in every file (the
    datamodule reads names only until an image is loaded)."""
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, format="BMP")
    subjects = [f"F{i:04d}" for i in range(1, 57)] + [f"M{i:04d}" for i in range(1, 45)]
    for subject in subjects:
        (root / subject).mkdir(parents=True)
        for name in bu3dfe_files(subject, "WH"):
            (root / subject / name).write_bytes(buffer.getvalue())
    return root


@pytest.mark.parametrize(("experiment", "k_id"), [("disent_multipie", 147), ("disent_rafd", 59), ("disent_bu3dfe", 90)])
def test_presets_give_one_identity_class_per_training_subject(make_cfg, tmp_path, experiment, k_id):
    if experiment == "disent_multipie":
        root = write_multipie(tmp_path / "mpie", subjects=tuple(range(1, 158)), cameras=("05_1",), illuminations=(0,),
                              size=(230, 230))
        extra = []
    elif experiment == "disent_rafd":
        root = write_rafd(tmp_path / "rafd", models=RAFD_MODELS, expressions=("neutral", "happy"), angles=("090",))
        extra = ["data.domains=[neutral,happy]", "data.crop=center"]
    else:
        root = _bu3dfe_names_only(tmp_path / "bu")
        extra = []
    cfg = make_cfg(f"experiment={experiment}", f"data.root={root}", "data.num_workers=0", *extra)
    dm = build_datamodule(cfg, "multi_factor")
    train_subjects = sorted({r.labels["identity"] for r in dm.records["train"]})
    assert dm.info["factor_sizes"]["identity"] == k_id == len(train_subjects)
    assert dm.info["factor_values"]["identity"] == train_subjects
    assert not set(dm.info["heldout_identities"]) & set(train_subjects)
