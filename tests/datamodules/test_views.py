"""The datamodule contract: views, batch format, info, splits, errors, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import hydra
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from datamodules import synthfaces_render as R
from datamodules.base import SeededShuffleSampler, check_view
from datamodules.synthetic import ShapesDataModule, SynthFacesDataModule
from suite.errors import ConfigError, DatasetError

CONF = Path(__file__).resolve().parents[2] / "conf" / "data"
VIEWS = ("two_domain", "multi_domain", "multi_attribute", "multi_factor")
SMALL = dict(image_size=32, train_size=24, val_size=12, test_size=12, batch_size=6)


def _dm(view: str, **kw) -> SynthFacesDataModule:
    return SynthFacesDataModule(view=view, **{**SMALL, **kw})


def _check_image(x: torch.Tensor, b: int, size: int = 32) -> None:
    assert x.dtype == torch.float32 and x.shape == (b, 3, size, size)
    assert x.min() >= -1 and x.max() <= 1 and x.std() > 0.1


def _check_truth(batch: dict) -> None:
    b = batch["image"].shape[0]
    _check_image(batch["gt"], b)
    m = batch["change_mask"]
    assert m.dtype == torch.float32 and m.shape == (b, 1, 32, 32)
    assert set(m.unique().tolist()) <= {0.0, 1.0}
    same = (batch["gt"] == batch["image"]).all(dim=1, keepdim=True)
    assert torch.equal(m == 0, same)


def _data_config(name: str):
    """conf/data/<name>.yaml less the suite's ``scale`` meta key (not a datamodule argument)."""
    cfg = OmegaConf.load(CONF / f"{name}.yaml")
    cfg.pop("scale", None)
    return cfg


@pytest.mark.parametrize("view", VIEWS)
def test_hydra_config_builds_every_view(view):
    cfg = _data_config("synthfaces")
    dm = hydra.utils.instantiate(cfg, view=view, image_size=32)
    assert isinstance(dm, SynthFacesDataModule) and dm.info["view"] == view
    cfg = _data_config("shapes")
    if view in ("two_domain", "multi_domain"):
        assert hydra.utils.instantiate(cfg, view=view).info["domain_names"] == ["square", "circle"]
    else:
        with pytest.raises(Exception) as err:  # Hydra wraps it in an InstantiationException
            hydra.utils.instantiate(cfg, view=view)
        cause = err.value
        while not isinstance(cause, DatasetError) and cause.__cause__ is not None:
            cause = cause.__cause__
        assert isinstance(cause, DatasetError)
        assert str(cause).startswith(
            "data=shapes offers the views two_domain, multi_domain; the method needs"
        )


@pytest.mark.parametrize("view", VIEWS)
def test_info_is_plain_data_known_before_any_rendering(view):
    dm = _dm(view)
    info = dm.info
    assert json.loads(json.dumps(info)) == info
    assert not dm._datasets  # nothing built, nothing rendered
    assert info["name"] == "synthfaces" and info["image_size"] == 32 and info["channels"] == 3
    if view in ("two_domain", "multi_domain"):
        assert info["num_domains"] == len(info["domain_names"])
        assert info["domain_names"] == (["neutral", "happy"] if view == "two_domain" else list(R.EXPRESSIONS))
    if view == "multi_attribute":
        assert info["attr_names"] == list(R.ATTRIBUTE_NAMES)
    if view == "multi_factor":
        assert info["factor_names"] == ["identity", "expression", "gaze", "illumination"]
        assert info["factor_sizes"] == {"identity": 32, "expression": 5, "gaze": 3, "illumination": 3}  # 8 held out
        assert info["factor_values"]["gaze"] == ["left", "front", "right"]


def _checked_batch(view: str, split: str, b: int = 6):
    """The first ``split`` batch of ``view``: images, references and ground truth checked; (datamodule, batch)."""
    dm = _dm(view)
    batch = next(iter(getattr(dm, f"{split}_dataloader")()))
    _check_image(batch["image"], b)
    _check_image(batch["ref"], b)
    _check_truth(batch)
    return dm, batch


def test_domain_views_batch_format():
    for view, d in (("two_domain", 2), ("multi_domain", 5)):
        _, batch = _checked_batch(view, "train")
        b = 6
        for key in ("domain", "target", "ref_domain"):
            assert batch[key].dtype == torch.int64 and batch[key].shape == (b,)
            assert batch[key].min() >= 0 and batch[key].max() < d
        assert (batch["target"] != batch["domain"]).all()
        assert torch.equal(batch["ref_domain"], batch["target"])
        assert torch.equal(batch["factors"]["expression"], batch["domain"])  # expression is the domain factor
        if view == "two_domain":
            assert (batch["domain"] == 0).all() and (batch["target"] == 1).all()


def test_multi_attribute_batch_format():
    dm, batch = _checked_batch("multi_attribute", "val")
    for key in ("attrs", "target_attrs"):
        assert batch[key].dtype == torch.float32 and batch[key].shape == (6, len(R.ATTRIBUTE_NAMES))
        assert set(batch[key].unique().tolist()) <= {0.0, 1.0}
    ds = dm.dataset("val")
    for j in range(6):
        p = ds.plan(j, 0)
        want = dict(zip(R.ATTRIBUTE_NAMES, batch["target_attrs"][j].int().tolist()))
        assert R.attributes(ds.record(p.ref)) == want
        assert R.attributes(p.gt) == want  # gt is the image with the reference's attributes
        assert R.attributes(ds.record(p.src)) == dict(
            zip(R.ATTRIBUTE_NAMES, batch["attrs"][j].int().tolist())
        )


def test_multi_factor_batch_format():
    dm, batch = _checked_batch("multi_factor", "test")
    for key in ("factors", "ref_factors", "target_factors"):
        assert list(batch[key]) == ["identity", "expression", "gaze", "illumination"]
        for name, v in batch[key].items():
            assert v.dtype == torch.int64 and v.shape == (6,)
            if name == "identity":  # test people are held out of training: no identity class (UNSEEN_CLASS)
                assert bool((v == -1).all())
                continue
            assert v.min() >= 0 and v.max() < dm.info["factor_sizes"][name]
    assert torch.equal(batch["target_factors"]["expression"], batch["ref_factors"]["expression"])
    assert torch.equal(batch["target_factors"]["identity"], batch["factors"]["identity"])
    assert batch["intensity"].dtype == torch.float32


def test_change_mask_is_the_true_change_region():
    """Never outside the clean renders' difference; covers (almost) every pixel changed by a grey level."""
    ds = _dm("multi_domain").dataset("test")
    items = ds.__getitems__(list(range(6)))
    for j, item in enumerate(items):
        p = ds.plan(j, 0)
        mask = item["change_mask"][0].numpy() > 0
        anything = R.change_mask(ds.record(p.src), p.gt, 32, eps=0.0)
        a_level = R.change_mask(ds.record(p.src), p.gt, 32, eps=1.0 / 255)
        assert mask.any() and not (mask & ~anything).any()
        assert (mask & a_level).sum() >= 0.98 * a_level.sum()


def test_multi_factor_subset_of_factors():
    dm = _dm("multi_factor", factors=["identity", "gaze"])
    batch = next(iter(dm.val_dataloader()))
    assert list(batch["factors"]) == ["identity", "gaze"] and "gt" not in batch
    assert dm.info["factor_sizes"] == {"identity": 32, "gaze": 3}
    assert bool((batch["factors"]["identity"] == -1).all())  # val people are held out: UNSEEN_CLASS


def test_held_out_identities_never_appear_in_training():
    dm = _dm("multi_factor", train_size=200, test_identities=8)
    held = set(dm.info["heldout_identities"])
    assert len(held) == 8
    train = {dm.dataset("train").record(r).identity for r in range(200)}
    test = {dm.dataset("test").record(r).identity for r in range(12)}
    assert train.isdisjoint(held) and len(train) > 20
    assert test <= held


def test_domain_views_test_split_is_a_different_stream():
    dm = _dm("two_domain")
    a = dm.dataset("train").record(0)
    b = dm.dataset("test").record(0)
    assert a != b and a.identity == R.sample_record(0, 0, "train").identity


def test_multi_domain_is_balanced_and_targets_vary_per_epoch():
    dm = _dm("multi_domain", train_size=25)
    ds = dm.dataset("train")
    counts = np.bincount([ds.plan(i, 0).labels["domain"].item() for i in range(25)], minlength=5)
    assert counts.tolist() == [5, 5, 5, 5, 5]
    targets = [[ds.plan(i, e).labels["target"].item() for i in range(25)] for e in range(3)]
    assert targets[0] != targets[1] or targets[1] != targets[2]
    val = dm.dataset("val")
    assert [val[i]["target"].item() for i in range(5)] == [val[i]["target"].item() for i in range(5)]


def test_direction_b2a_takes_sources_from_domain_1():
    dm = _dm("two_domain", direction="b2a", domain_factor="Eyeglasses")
    batch = next(iter(dm.val_dataloader()))
    assert (batch["domain"] == 1).all() and (batch["target"] == 0).all()
    assert dm.info["domain_names"] == ["not_Eyeglasses", "Eyeglasses"]
    ds = dm.dataset("val")
    assert all(ds.record(ds.plan(i, 0).src).eyeglasses for i in range(6))


def test_items_are_pure_functions_of_seed_split_and_index():
    one, two = _dm("multi_domain"), _dm("multi_domain")
    a = next(iter(one.val_dataloader()))
    b = next(iter(two.val_dataloader()))
    for key in ("image", "ref", "gt", "change_mask", "domain", "target"):
        assert torch.equal(a[key], b[key])
    assert not torch.equal(a["image"], next(iter(_dm("multi_domain", seed=1).val_dataloader()))["image"])


def test_worker_processes_give_the_same_batches():
    serial = [b["image"] for b in _dm("two_domain").val_dataloader()]
    parallel = [b["image"] for b in _dm("two_domain", num_workers=2).val_dataloader()]
    assert all(torch.equal(x, y) for x, y in zip(serial, parallel)) and len(serial) == len(parallel) == 2


def test_train_loader_shuffles_reproducibly_and_drops_the_last_batch():
    dm = _dm("two_domain", train_size=20)
    loader = dm.train_dataloader()
    assert len(loader) == 3 and loader.drop_last
    sampler = loader.sampler
    assert isinstance(sampler, SeededShuffleSampler)
    sampler.set_epoch(4)
    first = list(sampler)
    sampler.set_epoch(4)
    assert list(sampler) == first and sorted(k - 80 for k in first) == list(range(20))
    assert loader.pin_memory == torch.cuda.is_available()


def test_cached_epochs_return_the_same_pixels():
    dm = _dm("multi_factor")
    ds = dm.dataset("val")
    first = ds[3]
    assert ds._images and ds._truth
    again = ds[3]
    assert torch.equal(first["image"], again["image"]) and torch.equal(first["gt"], again["gt"])
    uncached = _dm("multi_factor", cache=False).dataset("val")[3]
    assert torch.equal(first["gt"], uncached["gt"])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(view="three_domain"), "the views are two_domain, multi_domain, multi_attribute, multi_factor"),
        (dict(view="two_domain", domain_factor="age"), "valid choices are expression, gaze, illumination"),
        (
            dict(view="multi_domain", domains=["neutral", "smirk"]),
            "valid choices are neutral, happy, surprised",
        ),
        (dict(view="multi_attribute", attributes=["Smiling", "Wavy_Hair"]), "valid choices are Smiling"),
        (dict(view="multi_factor", factors=["identity", "pose"]), "valid choices are identity, expression"),
        (dict(view="two_domain", direction="sideways"), "a2b, b2a"),
    ],
)
def test_unknown_names_raise_dataset_error_naming_valid_choices(kwargs, match):
    with pytest.raises(DatasetError, match=match):
        SynthFacesDataModule(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(batch_size=0),
        dict(num_workers=-1),
        dict(image_size=4),
        dict(test_identities=40),
        dict(domains=["happy"]),
        dict(supersample=0),
        dict(supersample=32),
    ],
)
def test_bad_settings_raise_config_error(kwargs):
    with pytest.raises(ConfigError):
        SynthFacesDataModule(view="two_domain", **kwargs)


def test_unsupported_view_sentence():
    with pytest.raises(DatasetError) as err:
        check_view("shapes", "multi_factor", ("two_domain", "multi_domain"))
    assert str(err.value) == (
        "data=shapes offers the views two_domain, multi_domain; "
        "the method needs multi_factor (several categorical factors per image)."
    )


def test_shapes_multi_domain_pairs_the_two_shapes():
    dm = ShapesDataModule(
        view="multi_domain", image_size=32, train_size=10, val_size=10, test_size=10, batch_size=10
    )
    batch = next(iter(dm.val_dataloader()))
    assert torch.equal(batch["target"], 1 - batch["domain"]) and batch["domain"].sum() == 5
