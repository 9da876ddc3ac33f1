"""The face renderer: determinism, factors, counterfactual locality, resolution, learnable signal."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from datamodules import synthfaces_render as R
from suite.errors import DatasetError

ROOT = Path(__file__).resolve().parents[2]


def _base(index: int = 3, **changes) -> R.FaceRecord:
    """A record with every binary attribute off and a front gaze/light, so each change is visible."""
    rec = R.sample_record(0, index)
    defaults = dict(
        expression="neutral",
        intensity=0.8,
        gaze="front",
        illumination="front",
        hair="brown",
        mouth_open=False,
        eyeglasses=False,
        bangs=False,
        arched_eyebrows=False,
        big_nose=False,
        male=False,
    )
    defaults.update(changes)
    return R.counterfactual(rec, **defaults)


def _inside(mask: np.ndarray, rec: R.FaceRecord, regions: tuple[str, ...]) -> bool:
    allowed = np.zeros_like(mask)
    for region in regions:
        r0, r1, c0, c1 = R.region_box(rec, region, mask.shape[0])
        allowed[r0:r1, c0:c1] = True
    return not (mask & ~allowed).any()


def test_same_seed_and_index_give_identical_bytes():
    a = R.render(R.sample_record(5, 11, "train"), 64)
    b = R.render(R.sample_record(5, 11, "train"), 64)
    assert a.dtype == np.uint8 and a.tobytes() == b.tobytes()


def test_render_does_not_depend_on_the_batch_around_it():
    recs = [R.sample_record(0, i) for i in range(9)]
    together = R.render_batch(recs, 48)
    for i in (0, 4, 8):
        assert np.array_equal(together[i], R.render(recs[i], 48))


def test_render_is_identical_in_a_fresh_process():
    code = (
        "import hashlib; from datamodules import synthfaces_render as R; "
        "print(hashlib.sha1(R.render(R.sample_record(2, 7, 'test'), 64).tobytes()).hexdigest())"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    here = hashlib.sha1(R.render(R.sample_record(2, 7, "test"), 64).tobytes()).hexdigest()
    assert out.stdout.strip() == here


def test_different_indices_splits_and_seeds_differ():
    ref = R.render(R.sample_record(0, 0, "train"), 32)
    for rec in (
        R.sample_record(0, 1, "train"),
        R.sample_record(0, 0, "test"),
        R.sample_record(1, 0, "train"),
    ):
        assert not np.array_equal(ref, R.render(rec, 32))


def test_identity_fixes_the_persons_traits():
    recs = [R.sample_record(0, i) for i in range(200)]
    by_id: dict[int, R.IdentityTraits] = {}
    for rec in recs:
        assert by_id.setdefault(rec.identity, rec.traits) == rec.traits
    assert len({t.skin for t in by_id.values()}) == len(by_id)


@pytest.mark.parametrize(
    "change",
    [
        {"expression": "happy"},
        {"expression": "surprised"},
        {"expression": "angry"},
        {"expression": "sad"},
        {"gaze": "left"},
        {"gaze": "right"},
        {"illumination": "left"},
        {"illumination": "right"},
        {"hair": "black"},
        {"mouth_open": True},
        {"eyeglasses": True},
        {"bangs": True},
        {"arched_eyebrows": True},
        {"big_nose": True},
        {"male": True},
    ],
    ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()),
)
def test_each_factor_changes_the_image(change):
    rec = _base()
    assert R.change_mask(rec, R.counterfactual(rec, **change), 64).sum() >= 4


def test_intensity_scales_the_expression():
    weak = _base(expression="happy", intensity=0.5)
    strong = R.counterfactual(weak, intensity=1.0)
    neutral = R.counterfactual(weak, expression="neutral")
    assert R.change_mask(weak, strong, 64).any()
    assert R.change_mask(neutral, strong, 64).sum() > R.change_mask(neutral, weak, 64).sum()


def test_smile_changes_only_the_mouth_region():
    """neutral → happy touches only pixels inside the (posed) mouth box: hair, eyes, background unchanged."""
    fractions = []
    for i in range(40):
        rec = R.counterfactual(R.sample_record(0, i), expression="neutral")
        happy = R.counterfactual(rec, expression="happy")
        mask = R.change_mask(rec, happy, 64)
        assert mask.any()
        assert _inside(mask, rec, ("mouth",)), f"record {i} changed pixels outside the mouth box"
        r0, _, _, _ = R.region_box(rec, "lower_face", 64)
        assert not mask[:r0].any()
        fractions.append(mask.mean())
    assert max(fractions) < 0.05


def test_other_expressions_change_only_mouth_and_brows():
    for i in range(20):
        rec = R.counterfactual(R.sample_record(0, i), expression="neutral")
        for expression in ("surprised", "angry", "sad"):
            mask = R.change_mask(rec, R.counterfactual(rec, expression=expression), 64)
            assert mask.any() and _inside(mask, rec, ("mouth", "brows")), (i, expression)


def test_sensor_noise_is_shared_so_unchanged_pixels_are_bit_identical():
    rec = _base(index=8)
    assert rec.noise_std > 0
    happy = R.counterfactual(rec, expression="happy")
    a, b = R.render(rec, 64), R.render(happy, 64)
    clean = R.change_mask(rec, happy, 64)
    assert np.array_equal(a[~clean], b[~clean])
    assert not np.array_equal(a, R.render(rec, 64, noise=False))


@pytest.mark.parametrize("size", [32, 48, 64, 128, 256])
def test_resolution_is_respected(size):
    img = R.render(R.sample_record(0, 1), size)
    assert img.shape == (size, size, 3) and img.dtype == np.uint8
    assert img.std() > 10  # a picture, not a flat fill


def test_supersampling_antialiases_edges():
    rec = _base(index=2, noise_std=0.0)
    sharp = R.render(rec, 64, supersample=1)
    smooth = R.render(rec, 64, supersample=4)
    levels = lambda img: len(np.unique(img.reshape(-1, 3), axis=0))  # noqa: E731
    assert levels(smooth) > 2 * levels(sharp)


def test_attribute_counterfactuals_take_the_requested_values():
    rng = np.random.default_rng(0)
    for i in range(60):
        rec = R.sample_record(0, i)
        want = {n: int(rng.integers(2)) for n in R.ATTRIBUTE_NAMES}
        hair = [n for n in ("Black_Hair", "Blond_Hair", "Brown_Hair") if want[n]]
        for extra in hair[1:]:
            want[extra] = 0
        got = R.attributes(R.counterfactual(rec, attributes=want))
        assert got == want, (i, want, got)


def test_attributes_mirror_the_record():
    rec = _base(expression="surprised")
    a = R.attributes(rec)
    assert a["Smiling"] == 0 and a["Mouth_Slightly_Open"] == 1
    assert R.attributes(replace(rec, expression="happy"))["Smiling"] == 1
    assert R.factors(rec)["expression"] == R.EXPRESSIONS.index("surprised")


@pytest.mark.parametrize(
    "call, word",
    [
        (lambda r: R.counterfactual(r, expression="smirk"), "neutral, happy"),
        (lambda r: R.counterfactual(r, attributes={"Wavy_Hair": 1}), "Smiling"),
        (lambda r: R.counterfactual(r, identity=3), "expression"),
        (lambda r: R.counterfactual(r, gaze="up"), "left, front, right"),
        (lambda r: R.region_box(r, "ears", 64), "mouth"),
    ],
)
def test_unknown_names_raise_dataset_error_naming_the_choices(call, word):
    with pytest.raises(DatasetError, match=word):
        call(R.sample_record(0, 0))


def test_two_hair_colours_at_once_are_refused():
    with pytest.raises(DatasetError, match="one hair colour"):
        R.counterfactual(R.sample_record(0, 0), attributes={"Black_Hair": 1, "Blond_Hair": 1})


def test_a_linear_probe_on_32px_pixels_tells_a_smile():
    """The smile is a learnable signal at 32 px: ridge regression on raw pixels, new faces, far above chance."""

    def data(n: int, split: str):
        y = np.arange(n) % 2
        recs = [
            R.counterfactual(R.sample_record(0, i, split), expression=("neutral", "happy")[k])
            for i, k in enumerate(y)
        ]
        return R.render_batch(recs, 32).reshape(n, -1).astype(np.float64) / 255.0, y * 2.0 - 1.0

    x, y = data(800, "train")
    xt, yt = data(300, "test")
    mu = x.mean(0)
    a = x - mu
    alpha = np.linalg.solve(a @ a.T + 3.0 * np.eye(len(a)), y)  # dual ridge: n×n instead of pixels²
    accuracy = (np.sign((xt - mu) @ (a.T @ alpha)) == yt).mean()
    assert accuracy > 0.75
