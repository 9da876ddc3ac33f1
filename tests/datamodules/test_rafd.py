"""RaFD reader on a tiny fixture in the official layout: labels, filters, splits, views, errors, a short run."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch._utils import ExceptionWrapper

from datamodules.images import BadImageError, ImageError, Preprocess
from datamodules.rafd import RaFDDataModule
from datamodules.rafd_layout import EXPRESSIONS, GAZES
from suite.errors import DatasetError
from suite.training import train

# model → (ethnicity, gender); 01 and 03 are default test models, the others train
MODELS = {1: ("Caucasian", "female"), 3: ("Moroccan", "male"), 10: ("Kid", "female"), 12: ("Caucasian", "male"),
          20: ("Moroccan", "female")}
ANGLES = ("090", "045")
SIZE = (20, 30)  # width × height: portrait, like RaFD's 681×1024


def write_rafd(root: Path, models=MODELS, expressions=EXPRESSIONS, gazes=GAZES, angles=ANGLES, seed=0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for model, (ethnicity, gender) in models.items():
        for expression in expressions:
            for gaze in gazes:
                for angle in angles:
                    pixels = rng.integers(0, 256, (SIZE[1], SIZE[0], 3), dtype=np.uint8)
                    name = f"Rafd{angle}_{model:02d}_{ethnicity}_{gender}_{expression}_{gaze}.jpg"
                    Image.fromarray(pixels).save(root / name, quality=90)
    (root / "README.txt").write_text("not an image")
    return root


@pytest.fixture(scope="module")
def rafd_root(tmp_path_factory) -> Path:
    return write_rafd(tmp_path_factory.mktemp("rafd") / "RaFD")


def _dm(root, view="two_domain", **kw) -> RaFDDataModule:
    return RaFDDataModule(view=view, root=str(root), **{"image_size": 16, "batch_size": 4, "num_workers": 0, **kw})


def _check_image(x: torch.Tensor, b: int, size: int = 16) -> None:
    assert x.dtype == torch.float32 and x.shape == (b, 3, size, size)
    assert x.min() >= -1 and x.max() <= 1 and x.std() > 0.1


def test_labels_parsed_and_frontal_filter(rafd_root):
    dm = _dm(rafd_root, "multi_factor")
    records = dm.records["train"] + dm.records["test"]
    assert len(records) == len(MODELS) * 8 * 3  # frontal only: one angle
    assert {r.labels["angle"] for r in records} == {"090"}
    rec = next(r for r in records if r.path.name == "Rafd090_03_Moroccan_male_surprised_left.jpg")
    assert rec.labels == {"identity": 3, "expression": "surprised", "gaze": "left", "angle": "090",
                          "gender": "male", "ethnicity": "Moroccan", "shot": "3/090/left"}
    every = _dm(rafd_root, "multi_factor", angles=None)
    assert len(every.records["train"]) + len(every.records["test"]) == len(MODELS) * 8 * 3 * 2
    assert _dm(rafd_root, "multi_factor", angles=[45]).records["test"][0].labels["angle"] == "045"


def test_split_by_test_models_is_disjoint(rafd_root):
    dm = _dm(rafd_root, "multi_factor", val_size=5)
    ids = {s: {r.labels["identity"] for r in dm.dataset(s).records} for s in ("train", "test")}
    assert ids["test"] == {1, 3} and ids["train"] == {10, 12, 20}
    assert len(dm.dataset("val")) == 5 and len(dm.dataset("test")) == 2 * 8 * 3
    val_paths = {dm.dataset("val").records[i].path for i in dm.dataset("val")._items}
    assert val_paths <= {r.path for r in dm.records["test"]}
    assert dm.info["heldout_identities"] == [1, 3]
    assert dm.info["factor_values"]["identity"] == [10, 12, 20]  # identity classes: the training models only
    assert {int(dm.dataset("test")[i]["factors"]["identity"]) for i in range(3)} == {-1}  # held out: no class


@pytest.mark.parametrize("view", ["two_domain", "multi_domain", "multi_factor"])
def test_view_batches(rafd_root, view):
    dm = _dm(rafd_root, view)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    _check_image(batch["image"], 4)
    _check_image(batch["ref"], 4)
    if view == "multi_factor":
        assert set(batch) == {"image", "ref", "factors", "ref_factors"}
        for key in ("factors", "ref_factors"):
            assert set(batch[key]) == {"identity", "expression", "gaze"}
            assert all(v.dtype == torch.int64 and v.shape == (4,) for v in batch[key].values())
        assert dm.info["factor_sizes"] == {"identity": 3, "expression": 8, "gaze": 3}  # C_id: the 3 train models
        return
    assert set(batch) == {"image", "domain", "target", "ref", "ref_domain"}
    assert all(batch[k].dtype == torch.int64 and batch[k].shape == (4,) for k in ("domain", "target", "ref_domain"))
    assert torch.equal(batch["ref_domain"], batch["target"])
    assert (batch["domain"] != batch["target"]).all()
    info = dm.info
    if view == "two_domain":
        assert info["domain_names"] == ["neutral", "happy"] and info["num_domains"] == 2
        assert (batch["domain"] == 0).all() and len(dm.dataset("train")) == 3 * 3  # 3 train models × 3 gazes
    else:
        assert info["domain_names"] == list(EXPRESSIONS) and info["num_domains"] == 8
    assert {"name", "view", "image_size", "channels", "fingerprint"} <= set(info) and info["image_size"] == 16


def test_pairings_are_seeded_per_epoch_and_fixed_in_evaluation(rafd_root):
    a, b = _dm(rafd_root, "multi_domain"), _dm(rafd_root, "multi_domain")
    train = a.dataset("train")
    n = len(train)
    plans = [train.plan(i, 0) for i in range(n)]
    assert [(p.ref, p.flip_src) for p in plans] == [(p.ref, p.flip_src) for p in (b.dataset("train").plan(i, 0) for i in range(n))]
    assert [(p.ref, p.flip_src) for p in plans] != [(p.ref, p.flip_src) for p in (train.plan(i, 1) for i in range(n))]
    assert torch.equal(train[n + 3]["image"], b.dataset("train")[n + 3]["image"])
    test = a.dataset("test")
    first, again = test[2], test[2]
    assert torch.equal(first["ref"], again["ref"]) and not any(test.plan(i, 0).flip_src for i in range(len(test)))


@pytest.mark.parametrize("view", ["two_domain", "multi_domain"])
def test_test_split_is_paired_by_model_camera_and_gaze_training_is_not(rafd_root, view):
    dm = _dm(rafd_root, view, angles=None)
    assert dm.info["has_gt"]
    test = dm.dataset("test")
    for item in range(len(test)):
        plan = test.plan(item, 0)
        src, gt = test.records[plan.src].labels, test.records[plan.gt].labels
        assert (gt["identity"], gt["angle"], gt["gaze"]) == (src["identity"], src["angle"], src["gaze"])
        assert gt["expression"] == dm.domain_names[plan.labels["tgt_dom"]] != src["expression"]
    batch = next(iter(dm.test_dataloader()))
    assert batch["gt"].shape == batch["image"].shape
    assert "gt" not in next(iter(dm.train_dataloader()))


def test_flip_mirrors_the_image_and_swaps_gaze(rafd_root):
    ds = _dm(rafd_root, "multi_factor").dataset("train")
    gaze = ds.factor_values["gaze"]
    key = next(i for i in range(len(ds))
               if ds.plan(i, 0).flip_src and ds.records[ds.plan(i, 0).src].labels["gaze"] == "left")
    item = ds[key]
    plain = ds._load(ds.plan(key, 0).src, flip=False)
    assert torch.equal(item["image"], plain.flip(-1))
    assert gaze[int(item["factors"]["gaze"])] == "right"


def test_fingerprint_follows_root_and_settings(rafd_root, tmp_path):
    base = _dm(rafd_root).info["fingerprint"]
    assert _dm(rafd_root).info["fingerprint"] == base
    assert _dm(rafd_root, crop="disent").info["fingerprint"] != base
    assert _dm(rafd_root, angles=None).info["fingerprint"] != base
    other = write_rafd(tmp_path / "copy", models={1: MODELS[1], 10: MODELS[10]}, expressions=("neutral", "happy"),
                       gazes=("frontal",), angles=("090",))
    assert _dm(other).info["fingerprint"] != base


def test_disent_crop_box_on_a_rafd_frame():
    pre = Preprocess(128, crop=640, shift=(0, -128))
    assert pre.crop_box(681, 1024) == (20, 64, 660, 704)
    assert Preprocess(128).crop_box(681, 1024) == (0, 171, 681, 852)


def test_unknown_expression_lists_the_valid_names(rafd_root):
    with pytest.raises(DatasetError, match="joyful") as err:
        _dm(rafd_root, "multi_domain", domains=["happy", "joyful"])
    assert ", ".join(EXPRESSIONS) in str(err.value)


def test_stargan_layout_uses_its_own_split(tmp_path):
    rng = np.random.default_rng(1)
    for split, n in (("train", 3), ("test", 2)):
        for expression in ("neutral", "happy", "sad"):
            (tmp_path / split / expression).mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(tmp_path / split / expression / f"{i:03d}.jpg")
    dm = _dm(tmp_path, "multi_domain", batch_size=2)
    assert dm.info["layout"] == "stargan" and dm.info["num_domains"] == 8
    assert len(dm.dataset("train")) == 9 and len(dm.dataset("test")) == 6
    batch = next(iter(dm.train_dataloader()))
    assert set(batch["domain"].tolist()) <= {EXPRESSIONS.index(e) for e in ("neutral", "happy", "sad")}
    with pytest.raises(DatasetError, match="identity"):
        _dm(tmp_path, "multi_factor")


def test_empty_split_is_refused(rafd_root):
    with pytest.raises(DatasetError, match=r"test split is empty.*\[99\]"):
        _dm(rafd_root, test_models=[99])
    with pytest.raises(DatasetError, match="train split is empty"):
        _dm(rafd_root, test_models=list(MODELS))


@pytest.fixture
def corrupt_root(tmp_path) -> tuple[Path, Path]:
    root = write_rafd(tmp_path / "RaFD", models={1: MODELS[1], 10: MODELS[10], 12: MODELS[12]},
                      expressions=("neutral", "happy"), gazes=("frontal", "left"), angles=("090",))
    bad = root / "Rafd090_10_Kid_female_neutral_left.jpg"
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    return root, bad


@pytest.mark.parametrize("workers", [0, 1])
def test_corrupt_jpeg_stops_naming_the_file(corrupt_root, workers):
    root, bad = corrupt_root
    dm = _dm(root, batch_size=2, num_workers=workers)
    with pytest.raises(BadImageError, match=bad.name) as err:
        for _ in dm.train_dataloader():
            pass
    assert "on_bad_image=skip" in str(err.value) and "\n" not in str(err.value)  # no worker traceback


def test_corrupt_jpeg_is_skipped_counted_and_reported(corrupt_root):
    root, bad = corrupt_root
    dm = _dm(root, on_bad_image="skip")
    ds = dm.dataset("train")
    with pytest.warns(UserWarning, match=rf"{bad.name}.*1 unreadable file"):
        items = [ds[i] for i in range(len(ds))]
    assert len(items) == len(ds) == 4 and all(torch.isfinite(x["image"]).all() for x in items)
    assert dm.skipped_images() == [str(bad)]
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable image file"):
        dm.teardown("fit")


def test_skips_in_worker_processes_are_counted(corrupt_root):
    root, bad = corrupt_root
    dm = _dm(root, on_bad_image="skip", batch_size=2, num_workers=1)
    batches = [b for _ in range(2) for b in dm.train_dataloader()]
    assert len(batches) == 4 and dm.skipped_images() == [str(bad)]


def test_worker_error_comes_back_as_one_sentence(corrupt_root):
    _, bad = corrupt_root
    try:
        raise BadImageError(f"data=rafd: cannot read the image {bad} (truncated)")
    except BadImageError:
        wrapped = ExceptionWrapper(sys.exc_info(), where="in DataLoader worker process 0")
    with pytest.raises(BadImageError) as err:
        wrapped.reraise()
    assert str(err.value) == f"data=rafd: cannot read the image {bad} (truncated)"
    assert issubclass(BadImageError, ImageError) and issubclass(ImageError, DatasetError)


def test_fast_dev_run_aggan_on_rafd(make_cfg, rafd_root):
    cfg = make_cfg("method=aggan", "data=rafd", f"data.root={rafd_root}", "trainer.fast_dev_run=true",
                   "method.generator.ngf=8", "method.generator.n_blocks=1", "method.discriminator.ndf=8",
                   "data.image_size=32", "data.batch_size=2", "data.num_workers=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = train(cfg)
    assert result["iteration"] == 1
    assert result["datamodule"].info["domain_names"] == ["neutral", "happy"]
