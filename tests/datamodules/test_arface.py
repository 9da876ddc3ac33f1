"""AR Face reader on tiny stand-ins in the official naming (M-001-01.bmp / .raw): names, sessions and expressions,
the person-disjoint split, same-person same-session ground truth, the views' batches, the headerless .raw decoding,
every error sentence, and a short AGGAN run."""

from __future__ import annotations

import pickle
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from datamodules import arface_layout as layout
from datamodules.arface import ARFaceDataModule
from datamodules.fake_layouts import ARFACE_PERSONS, arface_raw_bytes, write_arface
from datamodules.images import BadImageError, Preprocess
from metrics.image_quality import mse_255, psnr
from suite.errors import ConfigError, DatasetError
from tests.datamodules.fixtures import train_once, truncate

EXPRESSION_IMAGES = {1: "neutral", 2: "smile", 3: "anger", 4: "scream", 14: "neutral", 15: "smile", 16: "anger",
                     17: "scream"}


@pytest.fixture(scope="module")
def ar(tmp_path_factory) -> Path:
    return write_arface(tmp_path_factory.mktemp("ar") / "bmp")


@pytest.fixture(scope="module")
def ar_raw(tmp_path_factory) -> Path:
    return write_arface(tmp_path_factory.mktemp("ar") / "raw", fmt="raw")  # the same pictures as `ar`


def _dm(root, view="two_domain", **kw) -> ARFaceDataModule:
    return ARFaceDataModule(view=view, root=str(root), **{"image_size": 16, "batch_size": 4, "num_workers": 0,
                                                          "raw_size": [48, 36], **kw})


def _one_sentence(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message and message.endswith(".") and ". " not in message, message
    return message


def test_names_give_person_session_and_expression(ar):
    dm = _dm(ar, "multi_domain", test_persons=["W-003"])
    records = dm.records["train"] + dm.records["test"]
    assert len(records) == len(ARFACE_PERSONS) * 8  # the sun-glasses (08) and scarf (24) images are not read
    assert {r.labels["image"] for r in records} == set(EXPRESSION_IMAGES)
    assert all(r.labels["expression"] == EXPRESSION_IMAGES[r.labels["image"]] for r in records)
    rec = next(r for r in records if r.path.name == "W-002-16.bmp")
    assert rec.labels == {"identity": "W-002", "sex": "W", "person": 2, "image": 16, "session": 2,
                          "expression": "anger", "sitting": "W-002/s2"}
    assert dm.info["domain_names"] == ["neutral", "smile", "anger", "scream"] and dm.info["formats"] == [".bmp"]
    f = layout.parse(Path("m-7-3.raw"))  # lower case, unpadded: read too
    assert (f.identity, f.session, f.expression) == ("M-007", 1, "anger")
    assert layout.parse(Path("README.txt")) is None and layout.parse(Path("W-001-24.bmp")).expression is None
    for session in (1, 2):
        one = _dm(ar, sessions=[session])
        assert {r.labels["session"] for r in one.records["train"] + one.records["test"]} == {session}


def test_split_is_by_person_seeded_and_disjoint(ar):
    persons = sorted(ARFACE_PERSONS)
    dm = _dm(ar)  # default: a fraction 0.1 of the 6 persons -> 1, drawn with split_seed 1234
    expected = sorted(persons[i] for i in np.random.RandomState(1234).permutation(6)[:1])
    assert dm.info["heldout_identities"] == expected
    for test_persons, count in ((0.5, 3), (2, 2), (["M-001", "W-003"], 2)):
        dm = _dm(ar, "multi_domain", test_persons=test_persons)
        ids = {s: {r.labels["identity"] for r in dm.records[s]} for s in ("train", "test")}
        assert len(ids["test"]) == count and not ids["train"] & ids["test"] and ids["train"] | ids["test"] == set(persons)
        assert sorted(ids["test"]) == dm.info["heldout_identities"]
    assert dm.info["heldout_identities"] == ["M-001", "W-003"]
    assert _dm(ar, split_seed=7, test_persons=3).info["heldout_identities"] != _dm(ar, test_persons=3).info["heldout_identities"]


def test_ground_truth_is_the_same_person_and_session(ar):
    dm = _dm(ar, test_persons=2)
    assert dm.info["has_gt"] and dm.info["domain_names"] == ["neutral", "smile"]
    for split in ("train", "test"):
        ds = dm.dataset(split)
        assert len(ds) == 2 * len({r.labels["identity"] for r in ds.records})  # every neutral of both sessions
        for k in range(len(ds)):
            plan = ds.plan(k, 0)
            src, gt = ds.records[plan.src].labels, ds.records[plan.gt].labels
            assert (src["expression"], gt["expression"]) == ("neutral", "smile")
            assert (gt["identity"], gt["session"]) == (src["identity"], src["session"])
    test = dm.dataset("test")
    item = test[1]
    assert torch.equal(item["gt"], test._load(test.plan(1, 0).gt, flip=False))
    train = dm.dataset("train")
    key = next(k for k in range(len(train)) if train.plan(k, 0).flip_src)
    assert torch.equal(train[key]["gt"], train._load(train.plan(key, 0).gt, flip=True))  # flipped as its source
    back = _dm(ar, direction="b2a").dataset("test")
    assert [back.records[back.plan(k, 0).gt].labels["expression"] for k in range(len(back))] == ["neutral"] * len(back)
    multi = _dm(ar, "multi_domain").dataset("train")
    for k in range(len(multi)):
        plan = multi.plan(k, 0)
        src, gt = multi.records[plan.src].labels, multi.records[plan.gt].labels
        assert gt["sitting"] == src["sitting"] and gt["expression"] == multi.domain_values[plan.labels["tgt_dom"]]


@pytest.mark.parametrize("view", ["two_domain", "multi_domain"])
def test_view_batches(ar, view):
    dm = _dm(ar, view)
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"image", "domain", "target", "ref", "ref_domain", "gt"}
    for key in ("image", "ref", "gt"):
        x = batch[key]
        assert x.dtype == torch.float32 and x.shape == (4, 3, 16, 16) and x.min() >= -1 and x.max() <= 1
    assert all(batch[k].dtype == torch.int64 and batch[k].shape == (4,) for k in ("domain", "target", "ref_domain"))
    assert torch.equal(batch["ref_domain"], batch["target"]) and (batch["domain"] != batch["target"]).all()
    info = dm.info
    assert info["num_domains"] == (2 if view == "two_domain" else 4) and info["name"] == "arface"
    assert info["unpaired_sources"] == {"train": 0, "test": 0}


def test_decode_raw_by_hand(tmp_path):
    path = tmp_path / "M-001-01.raw"
    path.write_bytes(bytes([10, 11, 20, 21, 30, 31]))  # a 2×1 image
    assert layout.decode_raw(path, (2, 1), "planar").tolist() == [[[10, 20, 30], [11, 21, 31]]]
    assert layout.decode_raw(path, (2, 1), "interleaved").tolist() == [[[10, 11, 20], [21, 30, 31]]]
    pixels = np.arange(4 * 3 * 3, dtype=np.uint8).reshape(3, 4, 3)  # the fixture writer against the hand layout
    assert arface_raw_bytes(pixels) == bytes(np.concatenate([pixels[..., c].ravel() for c in range(3)]))


def test_raw_decoding_equals_the_bmp_pixels(ar, ar_raw, tmp_path):
    assert (ar_raw / "M-002-15.raw").stat().st_size == 48 * 36 * 3
    with Image.open(ar / "M-002-15.bmp") as img:
        assert np.array_equal(layout.decode_raw(ar_raw / "M-002-15.raw", (48, 36)), np.asarray(img.convert("RGB")))
    bmp, raw = _dm(ar).dataset("test"), _dm(ar_raw).dataset("test")
    assert [r.path.suffix for r in raw.records] == [".raw"] * len(raw.records)
    for k in range(len(bmp)):
        a, b = bmp[k], raw[k]
        assert all(torch.equal(a[key], b[key]) for key in ("image", "gt", "ref"))
    cached = _dm(ar_raw, cache_dir=str(tmp_path / "cache")).dataset("test")
    assert torch.equal(cached[0]["gt"], raw[0]["gt"]) and any((tmp_path / "cache").rglob("*.npy"))
    assert torch.equal(cached[0]["gt"], raw[0]["gt"])  # read back from the cache
    pre = pickle.loads(pickle.dumps(raw.preprocess))  # what a loader worker process receives
    assert np.array_equal(pre(ar_raw / "M-002-15.raw"), raw.preprocess(ar_raw / "M-002-15.raw"))
    inter = write_arface(tmp_path / "inter", fmt="raw", raw_order="interleaved", persons=("M-001", "W-001"))
    right = _dm(inter, raw_order="interleaved", test_persons=["M-001"]).dataset("test")[0]["image"]
    wrong = _dm(inter, test_persons=["M-001"]).dataset("test")[0]["image"]
    assert torch.equal(right, _dm(ar, test_persons=["M-001"]).dataset("test")[0]["image"])  # the same pictures
    assert not torch.equal(right, wrong)  # the byte order is a real switch
    mixed = tmp_path / "mixed"  # a .raw and a .bmp of every image, in subfolders: the .raw is read
    shutil.copytree(ar, mixed / "bmp")
    shutil.copytree(ar_raw, mixed / "nested" / "raw")
    assert {r.path.suffix for r in _dm(mixed).records["train"]} == {".raw"}


def test_a_release_size_raw_decodes(tmp_path):
    pixels = np.asarray(Image.fromarray(np.random.default_rng(0).integers(0, 256, (4, 4, 3), dtype=np.uint8))
                        .resize((768, 576), Image.Resampling.BICUBIC))
    (tmp_path / "W-001-02.raw").write_bytes(arface_raw_bytes(pixels))
    Image.fromarray(pixels).save(tmp_path / "W-001-02.bmp")
    assert (tmp_path / "W-001-02.raw").stat().st_size == 1_327_104
    pre = layout.RawPreprocess(32)  # the release's 768×576, planar; the centred 576² square
    assert pre.crop_box(768, 576) == (96, 0, 672, 576)
    assert np.array_equal(pre(tmp_path / "W-001-02.raw"), Preprocess(32)(tmp_path / "W-001-02.bmp"))


def test_layout_errors(ar, tmp_path):  # a missing root: tests/datamodules/test_roots.py
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(DatasetError, match=r"no file in .*empty is named like M-001-01\.raw; expected AR Face's"):
        _dm(tmp_path / "empty")
    (tmp_path / "z").mkdir()
    (tmp_path / "z" / "M-001-01.raw.Z").write_bytes(b"\x1f\x9d")
    with pytest.raises(DatasetError, match=r"still Unix-compressed \(M-001-01\.raw\.Z …\): run uncompress") as err:
        _dm(tmp_path / "z")
    _one_sentence(err)
    for bad in ("M-001-1a.bmp", "W-002-27.bmp", "M-000-01.raw"):
        root = tmp_path / bad
        shutil.copytree(ar, root)
        shutil.copy(ar / "M-001-01.bmp", root / bad)
        with pytest.raises(DatasetError, match=rf"the file name .*{bad} is malformed: expected \{{sex M or W\}}") as err:
            _dm(root)
        _one_sentence(err)
    root = tmp_path / "twice"
    shutil.copytree(ar, root)
    (root / "copy").mkdir()
    shutil.copy(ar / "W-001-14.bmp", root / "copy" / "W-001-14.bmp")
    with pytest.raises(DatasetError, match=r"W-001-14\.bmp and .*W-001-14\.bmp are both image W-001-14; keep one"):
        _dm(root)


def test_name_and_option_errors(ar):
    with pytest.raises(DatasetError, match=r"no expression 'fear'; valid choices are neutral, smile, anger, scream\.") as err:
        _dm(ar, expressions=["neutral", "fear"])
    _one_sentence(err)
    with pytest.raises(DatasetError, match=r"no session 3; valid choices are 1, 2\."):
        _dm(ar, sessions=[3])
    with pytest.raises(ConfigError, match=r"two_domain view needs exactly 2 expressions"):
        _dm(ar, expressions=["neutral", "smile", "anger"])
    with pytest.raises(DatasetError, match=r"no person 'M-009'; valid choices are M-001, M-002"):
        _dm(ar, test_persons=["M-009"])
    with pytest.raises(ConfigError, match=r"a fraction in \(0, 1\), a count or a list of persons, got 1\.5"):
        _dm(ar, test_persons=1.5)
    with pytest.raises(DatasetError, match=r"the train split is empty \(6 of the 6 persons drawn with split_seed 1234"):
        _dm(ar, test_persons=6)
    with pytest.raises(ConfigError, match=r"data.raw_order must be one of planar, interleaved"):
        _dm(ar, raw_order="bgr")


def test_a_person_without_the_target_expression_is_left_out_and_counted(ar, tmp_path):
    root = tmp_path / "ar"
    shutil.copytree(ar, root)
    (root / "W-002-15.bmp").unlink()  # W-002 smiles in session 1 only
    with pytest.warns(UserWarning, match=r"train split of data=arface: 1 source image\(s\) have no sitting-matched"):
        dm = _dm(root, test_persons=["M-001"])
    assert dm.info["unpaired_sources"] == {"train": 1, "test": 0}
    train = dm.dataset("train")
    sources = {train.records[i].path.name for i in train._items}
    assert "W-002-01.bmp" in sources and "W-002-14.bmp" not in sources and len(sources) == 9


def test_a_wrong_size_raw_stops_with_its_path(ar_raw, tmp_path):
    root = tmp_path / "raw"
    shutil.copytree(ar_raw, root)
    (root / "M-002-02.raw").write_bytes(bytes(100))
    with pytest.raises(DatasetError, match=r"M-002-02\.raw has 100 bytes where a 48×36 RGB \.raw image has 5,184 "
                                           r"\(data\.raw_size\); fix or remove it") as err:
        _dm(root)
    _one_sentence(err)
    with pytest.raises(DatasetError, match=r"where a 768×576 RGB \.raw image has 1,327,104 \(data\.raw_size\), and 23 other"):
        _dm(root, raw_size=[768, 576])
    test = _dm(root, test_persons=["M-002"], on_bad_image="skip").dataset("test")  # skip: the reader skips it
    key = next(k for k in range(len(test)) if test.records[test.plan(k, 0).gt].path.name == "M-002-02.raw")
    with pytest.warns(UserWarning, match=r"cannot read the image .*M-002-02\.raw \(100 bytes where a 48×36 RGB"):
        test[key]
    later = tmp_path / "later"
    shutil.copytree(ar_raw, later)
    good = _dm(later, test_persons=["M-002"]).dataset("test")
    (later / "M-002-02.raw").write_bytes(bytes(100))  # spoilt after the scan: the reader names it
    with pytest.raises(BadImageError, match=r"cannot read the image .*M-002-02\.raw \(100 bytes where .*; fix or remove") as err:
        good[key]
    _one_sentence(err)


def test_a_corrupt_bmp_is_named(ar, tmp_path):
    root = tmp_path / "ar"
    shutil.copytree(ar, root)
    truncate(root / "M-001-01.bmp")
    ds = _dm(root, test_persons=["M-001"]).dataset("test")
    key = next(k for k in range(len(ds)) if ds.records[ds.plan(k, 0).src].path.name == "M-001-01.bmp")
    with pytest.raises(BadImageError, match=r"data=arface: cannot read the image .*M-001-01\.bmp .*data\.on_bad_image=skip\.") as err:
        ds[key]
    _one_sentence(err)


def test_aggan_trains_on_arface(make_cfg, ar):
    result = train_once(make_cfg, "arface", ar, "data.raw_size=[48,36]")
    dm, module = result["datamodule"], result["module"].eval()
    assert dm.info["name"] == "arface" and dm.info["has_gt"] and dm.info["domain_names"] == ["neutral", "smile"]
    batch = next(iter(dm.test_dataloader()))  # what evaluate.py does with a batch that carries gt
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fake = module.translate(batch["image"], module.sample_target(batch))["image"].clamp(-1, 1)
    for value in (psnr(fake, batch["gt"]), mse_255(fake, batch["gt"])):
        assert value.shape == (batch["image"].shape[0],) and torch.isfinite(value).all()
