"""Procedural cartoon faces with ground truth (the embedded ``synthfaces`` data; spec: specs/synthetic.md).

A face is a :class:`FaceRecord`, a frozen parameter record that is a pure function of
``(dataset seed, split, index)`` (:func:`sample_record`). :func:`render` draws it; :func:`counterfactual`
returns the same record with some factors changed, whose render is the true translation of the image (same
person, pose, background, light and sensor noise), so the pixels that differ between the two renders are the
true change region.

How it is drawn, and why it is fast (vectorised over a batch of records, no per-pixel Python):

- Everything is drawn on a supersampled grid (``supersample`` × the output size) and box-downsampled, which
  anti-aliases every edge.
- The face is drawn upright in its own *face frame* (``u`` right, ``v`` down, the head about 0.45 × 0.56
  half-axes), then mapped into the image by the record's pose (shift, scale, rotation) with one gather. In
  the face frame every part is an axis-aligned region ``|u - c| < w(v)`` or ``lo(u) < v < hi(u)``, so the
  per-row and per-column functions are computed on 1-D arrays and the 2-D work is one or two comparisons per
  part, each restricted to the part's fixed window of the face frame.
- Parts write small integer labels; colours come from a per-record palette of 8-bit levels, packed into
  16-bit lanes of one integer so a single gather and integer adds do the box filter for all three channels.
  The illumination shading (smooth) is applied to the face's share of each output pixel; the background
  gradient is a ladder of palette levels.
- Only IEEE-exact float operations (+, −, ×, ÷, sqrt, comparisons) touch the grids and the box filter sums
  integers, so a record renders to the same bytes alone, in any batch and in any process. Sensor noise is a
  window of a fixed Gaussian bank at an offset set by the record.

Expressions are *shape* changes of the mouth and the brows only (a smile widens the mouth, curves it up and
shows the teeth; surprise opens an O mouth and raises the brows; anger pulls the brows' inner ends down and
presses the lips; sadness curves the mouth down and lifts the brows' inner ends), scaled by a continuous
intensity. Eyes, hair, skin and background never change with the expression.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from functools import lru_cache

import numpy as np

from suite.errors import ConfigError, DatasetError

EXPRESSIONS: tuple[str, ...] = ("neutral", "happy", "surprised", "angry", "sad")
GAZES: tuple[str, ...] = ("left", "front", "right")
ILLUMINATIONS: tuple[str, ...] = ("left", "front", "right")
HAIR_COLOURS: tuple[str, ...] = ("black", "blond", "brown", "red", "gray")
FACTOR_NAMES: tuple[str, ...] = ("identity", "expression", "gaze", "illumination")
ATTRIBUTE_NAMES: tuple[str, ...] = (
    "Smiling",
    "Mouth_Slightly_Open",
    "Eyeglasses",
    "Bangs",
    "Black_Hair",
    "Blond_Hair",
    "Brown_Hair",
    "Arched_Eyebrows",
    "Big_Nose",
    "Male",
)
_HAIR_ATTRIBUTES = {"Black_Hair": "black", "Blond_Hair": "blond", "Brown_Hair": "brown"}
_BOOL_ATTRIBUTES = {
    "Eyeglasses": "eyeglasses",
    "Bangs": "bangs",
    "Arched_Eyebrows": "arched_eyebrows",
    "Big_Nose": "big_nose",
    "Male": "male",
}
# Boxes of the face frame (u0, u1, v0, v1) that contain everything a change of one kind can touch.
REGIONS: dict[str, tuple[float, float, float, float]] = {
    "mouth": (-0.27, 0.27, 0.10, 0.47),
    "lower_face": (-0.50, 0.50, 0.0, 0.70),
    "brows": (-0.36, 0.36, -0.36, -0.06),
    "eyes": (-0.32, 0.32, -0.16, 0.01),
}

# ---------------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class IdentityTraits:
    """What stays fixed for one person (face-frame units; colours RGB in [0, 1])."""

    face_width: float  # head half-width
    face_height: float  # head half-height
    jaw: float  # 0 round … 1 tapered chin
    skin: tuple[float, float, float]
    lips: tuple[float, float, float]
    eye_spacing: float  # |u| of the eye centres
    eye_y: float
    eye_width: float  # eye half-width
    eye_height: float  # eye half-height
    iris_radius: float
    iris: tuple[float, float, float]
    nose_width: float  # nose half-width at the nostrils
    nose_length: float
    mouth_y: float
    mouth_scale: float
    brow_y: float
    brow_thickness: float
    hairline: float
    hair_style: int  # 0 short, 1 medium, 2 long
    hair: str  # the person's hair colour (records start from it)
    male: bool  # the person has a beard (records start from it)


@dataclass(frozen=True)
class FaceRecord:
    """One image's parameters. Factors and attributes first, then nuisance (pose, background, noise)."""

    identity: int
    traits: IdentityTraits
    expression: str = "neutral"
    intensity: float = 0.75  # scales the expression's deformation
    gaze: str = "front"
    illumination: str = "front"
    hair: str = "brown"
    mouth_open: bool = False
    eyeglasses: bool = False
    bangs: bool = False
    arched_eyebrows: bool = False
    big_nose: bool = False
    male: bool = False
    center: tuple[float, float] = (0.0, 0.06)  # face centre in image coordinates ([-1, 1], y down)
    scale: float = 1.15
    rotation: float = 0.0  # radians
    background: tuple[tuple[float, float, float], tuple[float, float, float], float] = (
        (0.55, 0.6, 0.65),
        (0.75, 0.78, 0.8),
        0.0,
    )
    clutter: tuple[tuple[float, ...], ...] = ()  # (is_rect, cx, cy, rx, ry, r, g, b) each
    shirt: tuple[float, float, float] = (0.3, 0.35, 0.6)
    glasses: tuple[float, float, float] = (0.1, 0.1, 0.1)
    noise_std: float = 0.0  # sensor noise, grey levels of 255
    noise_seed: int = 0


_CHANGEABLE = tuple(f.name for f in fields(FaceRecord) if f.name not in ("identity", "traits", "noise_seed"))


def split_stream(split: str) -> int:
    """The seed stream of a split name: train/val/test are 0/1/2, any other name a stable hash."""
    return {"train": 0, "val": 1, "test": 2}.get(split, zlib.crc32(split.encode()) + 3)


def _choice(rng: np.random.Generator, options: Sequence):
    return options[int(rng.integers(len(options)))]


@lru_cache(maxsize=4096)
def sample_identity(seed: int, identity: int) -> IdentityTraits:
    """The traits of person ``identity`` in the dataset of ``seed``."""
    rng = np.random.default_rng([int(seed), 7919, int(identity)])
    u = rng.uniform
    tones = (
        (0.99, 0.86, 0.74),
        (0.96, 0.79, 0.65),
        (0.89, 0.70, 0.55),
        (0.78, 0.58, 0.42),
        (0.62, 0.44, 0.30),
        (0.46, 0.32, 0.22),
    )
    skin = np.clip(np.array(_choice(rng, tones)) + u(-0.03, 0.03, 3), 0, 1)
    lips = np.clip(skin * np.array([0.86, 0.55, 0.55]) + np.array([0.08, 0.0, 0.02]), 0, 1)
    irises = (
        (0.42, 0.26, 0.12),
        (0.20, 0.13, 0.08),
        (0.22, 0.45, 0.78),
        (0.28, 0.56, 0.34),
        (0.48, 0.52, 0.58),
        (0.55, 0.42, 0.18),
    )
    eye_y = u(-0.09, -0.05)
    eye_height = u(0.030, 0.044)
    hair = _choice(rng, ("black", "blond", "brown", "black", "blond", "brown", "red", "gray"))
    return IdentityTraits(
        face_width=u(0.40, 0.47),
        face_height=u(0.53, 0.60),
        jaw=u(0.0, 1.0),
        skin=tuple(float(c) for c in skin),
        lips=tuple(float(c) for c in lips),
        eye_spacing=u(0.145, 0.185),
        eye_y=eye_y,
        eye_width=u(0.060, 0.078),
        eye_height=eye_height,
        iris_radius=eye_height * u(0.85, 1.05),
        iris=_choice(rng, irises),
        nose_width=u(0.035, 0.055),
        nose_length=u(0.12, 0.16),
        mouth_y=u(0.26, 0.29),
        mouth_scale=u(0.93, 1.07),
        brow_y=eye_y - u(0.105, 0.12),
        brow_thickness=u(0.014, 0.020),
        hairline=u(-0.50, -0.43),
        hair_style=int(rng.integers(3)),
        hair=hair,
        male=bool(rng.random() < 0.45),
    )


def sample_record(
    seed: int,
    index: int,
    split: str = "train",
    *,
    identities: Sequence[int] | None = None,
    num_identities: int = 40,
    intensity_range: tuple[float, float] = (0.5, 1.0),
    noise: bool = True,
) -> FaceRecord:
    """The record of image ``index`` of ``split``: a pure function of the arguments.

    Identity is uniform over ``identities`` (default ``range(num_identities)``); hair colour and beard
    start from the person's own (changeable by :func:`counterfactual`); expression, gaze and illumination
    are uniform; the other attributes are independent coin flips; pose, background, clutter and sensor
    noise are nuisance.
    """
    rng = np.random.default_rng([int(seed), split_stream(split), int(index)])
    ids = range(num_identities) if identities is None else identities
    identity = int(ids[int(rng.integers(len(ids)))])
    traits = sample_identity(seed, identity)
    u = rng.uniform

    def colour(lo: float, hi: float) -> tuple[float, float, float]:
        return tuple(float(c) for c in u(lo, hi, 3))

    bg_a = colour(0.15, 0.9)
    bg_b = tuple(float(np.clip(c + u(-0.25, 0.25), 0.05, 0.95)) for c in bg_a)
    clutter = []
    for _ in range(3):
        clutter.append(
            (
                float(rng.random() < 0.5),
                u(-1.0, 1.0),
                u(-1.0, 1.0),
                u(0.08, 0.35),
                u(0.08, 0.35),
                *colour(0.05, 0.95),
            )
        )
    return FaceRecord(
        identity=identity,
        traits=traits,
        expression=_choice(rng, EXPRESSIONS),
        intensity=u(*intensity_range),
        gaze=_choice(rng, GAZES),
        illumination=_choice(rng, ILLUMINATIONS),
        hair=traits.hair,
        mouth_open=bool(rng.random() < 0.3),
        eyeglasses=bool(rng.random() < 0.35),
        bangs=bool(rng.random() < 0.4),
        arched_eyebrows=bool(rng.random() < 0.4),
        big_nose=bool(rng.random() < 0.35),
        male=traits.male,
        center=(u(-0.07, 0.07), u(0.02, 0.12)),
        scale=u(1.08, 1.22),
        rotation=math.radians(u(-8.0, 8.0)),
        background=(bg_a, bg_b, u(0.0, 2 * math.pi)),
        clutter=tuple(clutter),
        shirt=colour(0.1, 0.85),
        glasses=_choice(rng, ((0.08, 0.08, 0.08), (0.35, 0.2, 0.1), (0.55, 0.55, 0.6), (0.1, 0.15, 0.4))),
        noise_std=u(1.0, 4.0) if noise else 0.0,
        noise_seed=int(rng.integers(2**62)),
    )


def _check(kind: str, value, valid: Sequence) -> None:
    if value not in valid:
        raise DatasetError(
            f"data=synthfaces has no {kind} {value!r}; valid choices are {', '.join(map(str, valid))}."
        )


def attributes(record: FaceRecord) -> dict[str, int]:
    """The record's binary attributes (CelebA names, :data:`ATTRIBUTE_NAMES` order), 0 or 1."""
    return {
        "Smiling": int(record.expression == "happy"),
        "Mouth_Slightly_Open": int(record.mouth_open or record.expression == "surprised"),
        "Eyeglasses": int(record.eyeglasses),
        "Bangs": int(record.bangs),
        "Black_Hair": int(record.hair == "black"),
        "Blond_Hair": int(record.hair == "blond"),
        "Brown_Hair": int(record.hair == "brown"),
        "Arched_Eyebrows": int(record.arched_eyebrows),
        "Big_Nose": int(record.big_nose),
        "Male": int(record.male),
    }


def factors(record: FaceRecord) -> dict[str, int]:
    """The record's categorical factors as indices (identity, expression, gaze, illumination)."""
    return {
        "identity": record.identity,
        "expression": EXPRESSIONS.index(record.expression),
        "gaze": GAZES.index(record.gaze),
        "illumination": ILLUMINATIONS.index(record.illumination),
    }


def _apply_attributes(record: FaceRecord, attrs: Mapping[str, bool | int | float]) -> FaceRecord:
    """The nearest record whose :func:`attributes` take the requested values.

    Smiling=1 makes the expression happy, Smiling=0 turns a smile neutral; Mouth_Slightly_Open=0 closes the
    mouth (a surprised face, whose O mouth is open, becomes neutral); a hair colour set to 1 dyes the hair,
    set to 0 it turns the hair red (or gray when it is red already).
    """
    for name in attrs:
        _check("attribute", name, ATTRIBUTE_NAMES)
    want = {k: bool(round(float(v))) for k, v in attrs.items()}
    changes: dict = {}
    colours = [c for k, c in _HAIR_ATTRIBUTES.items() if want.get(k)]
    if len(colours) > 1:
        raise DatasetError(
            f"a face has one hair colour; the attributes ask for {', '.join(colours)} at once."
        )
    if colours:
        changes["hair"] = colours[0]
    elif any(k in want and record.hair == c for k, c in _HAIR_ATTRIBUTES.items()):
        changes["hair"] = "red"
    expression = record.expression
    if "Smiling" in want:
        if want["Smiling"]:
            expression = "happy"
        elif expression == "happy":
            expression = "neutral"
    if "Mouth_Slightly_Open" in want:
        changes["mouth_open"] = want["Mouth_Slightly_Open"]
        if not want["Mouth_Slightly_Open"] and expression == "surprised":
            expression = "neutral"
    changes["expression"] = expression
    for name, field in _BOOL_ATTRIBUTES.items():
        if name in want:
            changes[field] = want[name]
    return replace(record, **changes)


def counterfactual(
    record: FaceRecord, attributes: Mapping[str, bool | int | float] | None = None, **changes
) -> FaceRecord:
    """The same face with some factors changed: its render is the true translation of ``record``'s image.

    ``changes`` are record fields (``expression="happy"``, ``gaze="left"``, ``eyeglasses=True``, ``intensity``
    …); ``attributes`` a dict of CelebA attribute names to 0/1, applied first. Identity and the noise field
    cannot change (they define the person and the sensor).
    """
    if attributes:
        record = _apply_attributes(record, attributes)
    for name, value in changes.items():
        _check("changeable field", name, _CHANGEABLE)
        valid = {
            "expression": EXPRESSIONS,
            "gaze": GAZES,
            "illumination": ILLUMINATIONS,
            "hair": HAIR_COLOURS,
        }.get(name)
        if valid is not None:
            _check(name, value, valid)
    return replace(record, **changes) if changes else record


# ---------------------------------------------------------------------------------------------- raster helpers
# Shared with the shapes renderer: supersampling, background gradient labels, box filter, sensor noise.

BG_LABEL = 32  # labels 32 … 63 are the background gradient's levels
BG_LEVELS = 32
PALETTE_SIZE = 64


def supersample_factor(image_size: int, supersample: int | None = None) -> int:
    """Subsamples per pixel side: enough for smooth edges, fewer at large sizes (cost grows with area)."""
    if supersample is not None:
        if not 1 <= int(supersample) <= 16:  # 16² subsamples of 255 fill a 16-bit lane of pack_palette
            raise ConfigError(f"supersample must be an integer from 1 to 16, got {supersample!r}.")
        return int(supersample)
    return max(2, min(4, 192 // int(image_size)))


def pixel_centres(n: int) -> np.ndarray:
    """Centres of ``n`` pixels spanning [-1, 1], float32."""
    return ((np.arange(n, dtype=np.float64) + 0.5) / n * 2.0 - 1.0).astype(np.float32)


def gradient_labels(x: np.ndarray, angles: Sequence[float]) -> np.ndarray:
    """Background labels BG_LABEL + level of a linear gradient at ``angles`` (one per image): N×G×G uint8."""
    c = np.array([math.cos(a) for a in angles], np.float32)[:, None, None]
    s = np.array([math.sin(a) for a in angles], np.float32)[:, None, None]
    k = np.float32(0.35 * (BG_LEVELS - 0.001))
    tx = x[None, None, :] * c * k + np.float32(BG_LABEL + 0.5 * (BG_LEVELS - 0.001))
    ty = x[None, :, None] * s * k
    return (tx + ty).astype(np.uint8)


def gradient_palette(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    """The BG_LEVELS colours from ``a`` to ``b`` (BG_LEVELS×3 float32)."""
    t = np.linspace(0.0, 1.0, BG_LEVELS, dtype=np.float32)[:, None]
    a = np.asarray(a, np.float32)
    return a + (np.asarray(b, np.float32) - a) * t


def box_sum(img: np.ndarray, f: int) -> np.ndarray:
    """N×(S·f)×(S·f)[×C] → N×S×S[×C] sums over f×f blocks, added in a fixed order (batch-independent bytes)."""
    acc = img[:, 0::f, 0::f].copy()
    for dy in range(f):
        for dx in range(f):
            if dy or dx:
                np.add(acc, img[:, dy::f, dx::f], out=acc)
    return acc


def pack_palette(palettes: np.ndarray) -> np.ndarray:
    """N×K×3 colours in [0, 1] → N·K uint64, the 8-bit levels of R, G, B in 16-bit lanes.

    Lanes let one integer gather fetch a whole colour and one integer add sum three channels of up to 257
    subsamples without carries.
    """
    q = np.rint(np.clip(palettes, 0.0, 1.0) * 255.0).astype(np.uint64).reshape(-1, 3)
    return q[:, 0] | (q[:, 1] << np.uint64(16)) | (q[:, 2] << np.uint64(32))


def unpack_sums(packed: np.ndarray) -> np.ndarray:
    """Lane sums of :func:`pack_palette` colours → float32 with a trailing RGB axis."""
    lane = np.uint64(0xFFFF)
    return np.stack([(packed >> np.uint64(16 * c)) & lane for c in range(3)], axis=-1).astype(np.float32)


def gather_colours(labels: np.ndarray, packed: np.ndarray) -> np.ndarray:
    """N×G×G uint8 labels and N×K packed palettes → N×G×G packed colours (one small-palette gather per image,
    which stays in cache and needs no index arithmetic)."""
    out = np.empty(labels.shape, np.uint64)
    for j in range(labels.shape[0]):
        np.take(packed[j], labels[j], out=out[j], mode="clip")
    return out


def render_labels(labels: np.ndarray, palettes: np.ndarray, f: int) -> np.ndarray:
    """Supersampled labels N×G×G (indices into each image's palette N×K×3) → N×S×S×3 float32 in [0, 255]."""
    n, k = palettes.shape[:2]
    sums = box_sum(gather_colours(labels, pack_palette(palettes).reshape(n, k)), f)
    out = unpack_sums(sums)
    out *= np.float32(1.0 / (f * f))
    return out


def stamp(
    canvas: np.ndarray, x: np.ndarray, label: int, cx: float, cy: float, rx: float, ry: float, rect: bool
) -> None:
    """Draw an axis-aligned ellipse, or rectangle, of centre (cx, cy) and half-axes (rx, ry) into one G×G label
    image whose pixel centres are ``x`` along both axes; only its bounding box is touched."""
    dx = (x - np.float32(cx)) * np.float32(1.0 / rx)
    dy = (x - np.float32(cy)) * np.float32(1.0 / ry)
    cols = np.flatnonzero(np.abs(dx) < 1.0)
    rows = np.flatnonzero(np.abs(dy) < 1.0)
    if not cols.size or not rows.size:
        return
    c0, c1, r0, r1 = cols[0], cols[-1] + 1, rows[0], rows[-1] + 1
    if rect:
        canvas[r0:r1, c0:c1] = label
    else:
        inside = (np.square(dx[c0:c1])[None, :] + np.square(dy[r0:r1])[:, None]) < 1.0
        np.copyto(canvas[r0:r1, c0:c1], np.uint8(label), where=inside)


_NOISE_SPAN = 1 << 21
_NOISE_CHUNK = 1 << 16
_noise_bank = np.zeros(0, np.float32)


def noise_field(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    """A standard-normal field for one image: a window of a fixed bank at an offset set by ``seed``.

    The bank is built in fixed chunks from fixed seeds, so a field is the same in every process.
    """
    global _noise_bank
    count = int(np.prod(shape))
    need = _NOISE_SPAN + count
    if _noise_bank.size < need:
        chunks = [_noise_bank]
        for k in range(_noise_bank.size // _NOISE_CHUNK, -(-need // _NOISE_CHUNK)):
            chunks.append(np.random.default_rng([0x5EED, k]).standard_normal(_NOISE_CHUNK, dtype=np.float32))
        _noise_bank = np.concatenate(chunks)
    offset = int(seed) % _NOISE_SPAN
    field = _noise_bank[offset : offset + count].reshape(shape)
    return -field if (int(seed) >> 40) & 1 else field


def quantise(clean255: np.ndarray, stds: Sequence[float], seeds: Sequence[int]) -> np.ndarray:
    """N×H×W×3 float in [0, 255] → uint8, adding each image's own deterministic sensor noise field."""
    out = clean255.copy()
    for i, (std, seed) in enumerate(zip(stds, seeds)):
        if std > 0:
            out[i] += noise_field(seed, out.shape[1:]) * np.float32(std)
    np.rint(out, out=out)
    np.clip(out, 0, 255, out=out)
    return out.astype(np.uint8)


# ---------------------------------------------------------------------------------------------- renderer
# Labels of the face frame (1 … 31) and of the image-space layers.
SKIN, HAIR, EYE_WHITE, IRIS, PUPIL, BROW, LIPS, MOUTH, TEETH, NOSE = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
BEARD, GLASSES, EAR, NOSTRIL, NECK, SHIRT, CLUTTER, HAIR_BACK, EYE_LINE = 11, 12, 13, 14, 15, 16, 17, 20, 21

_FACE_U = (-0.80, 0.80)
_FACE_V = (-0.98, 0.86)
_MAX_SCALE = 1.25  # largest pose scale: the face frame is sampled at least as finely as the image grid

_WINDOWS = {
    "all": (-0.80, 0.80, -0.98, 0.86),
    "ears": (-0.62, 0.62, -0.20, 0.16),
    "upper": (-0.80, 0.80, -0.98, 0.02),
    "lower": (-0.62, 0.62, -0.12, 0.64),
    "nose": (-0.16, 0.16, -0.12, 0.22),
    "eyes": (-0.32, 0.32, -0.16, 0.01),
    "brows": (-0.36, 0.36, -0.36, -0.06),
    "glasses": (-0.60, 0.60, -0.20, 0.06),
    "mouth": (-0.27, 0.27, 0.10, 0.47),
}


class _Grid:
    """Sampling grids of one output size: the supersampled image grid and the face-frame grid."""

    def __init__(self, image_size: int, supersample: int):
        self.size = image_size
        self.ss = supersample
        self.g = image_size * supersample
        self.x = pixel_centres(self.g)
        self.step = 2.0 / (self.g * _MAX_SCALE)
        self.cw = int(math.ceil((_FACE_U[1] - _FACE_U[0]) / self.step))
        self.ch = int(math.ceil((_FACE_V[1] - _FACE_V[0]) / self.step))
        # one blank border pixel around the face frame: out-of-frame samples are clipped onto it
        self.u = (_FACE_U[0] + (np.arange(-1, self.cw + 1) + 0.5) * self.step).astype(np.float32)
        self.v = (_FACE_V[0] + (np.arange(-1, self.ch + 1) + 0.5) * self.step).astype(np.float32)
        self.windows = {}
        for name, (u0, u1, v0, v1) in _WINDOWS.items():
            c0 = max(1, int(np.searchsorted(self.u, u0)))
            c1 = min(self.cw + 1, int(np.searchsorted(self.u, u1)))
            r0 = max(1, int(np.searchsorted(self.v, v0)))
            r1 = min(self.ch + 1, int(np.searchsorted(self.v, v1)))
            u = self.u[c0:c1][None, None, :]
            v = self.v[r0:r1][None, :, None]
            self.windows[name] = (slice(r0, r1), slice(c0, c1), u, np.abs(u), v)


@lru_cache(maxsize=32)
def _grid(image_size: int, supersample: int) -> _Grid:
    return _Grid(image_size, supersample)


def _col(values: Iterable[float]) -> np.ndarray:
    """One value per image → N×1×1 float32."""
    return np.asarray(list(values), np.float32).reshape(-1, 1, 1)


_HAIR_RGB = {
    "black": (0.10, 0.08, 0.07),
    "blond": (0.93, 0.80, 0.45),
    "brown": (0.42, 0.26, 0.13),
    "red": (0.72, 0.28, 0.12),
    "gray": (0.68, 0.68, 0.70),
}

# Mouth and brow shapes per expression as (base, per unit intensity) pairs; see _mouth_params.
_MOUTH = {
    #            half-width     bend (+ = corners down)   upper opening   lower opening  lip   teeth
    "neutral": ((0.105, 0.0), (0.004, 0.0), (0.003, 0.0), (0.003, 0.0), 0.018, 0.0),
    "happy": ((0.100, 0.085), (0.0, -0.060), (0.006, 0.0), (0.030, 0.060), 0.015, 0.030),
    "surprised": ((0.050, 0.025), (0.0, 0.0), (0.030, 0.035), (0.040, 0.045), 0.016, 0.0),
    "angry": ((0.092, -0.022), (0.012, 0.016), (0.002, 0.0), (0.002, 0.0), 0.009, 0.0),
    "sad": ((0.100, 0.0), (0.030, 0.065), (0.003, 0.0), (0.003, 0.0), 0.017, 0.0),
}
_BROWS = {  # raise (up = +), tilt (+ = inner ends down), extra arch, each per unit intensity
    "neutral": (0.0, 0.0, 0.0),
    "happy": (0.0, 0.0, 0.0),
    "surprised": (0.045, 0.0, 0.012),
    "angry": (-0.010, 0.090, 0.0),
    "sad": (0.010, -0.070, 0.0),
}


def _palette(r: FaceRecord) -> np.ndarray:
    t = r.traits
    pal = np.zeros((PALETTE_SIZE, 3), np.float32)  # label 0 stays black: "no colour" in the face/rest split
    skin = np.asarray(t.skin, np.float32)
    hair = np.asarray(_HAIR_RGB[r.hair], np.float32)
    pal[SKIN] = skin
    pal[HAIR] = hair
    pal[HAIR_BACK] = hair * 0.78
    pal[EYE_WHITE] = (0.97, 0.97, 0.95)
    pal[IRIS] = t.iris
    pal[PUPIL] = (0.03, 0.03, 0.03)
    pal[EYE_LINE] = skin * 0.35
    pal[BROW] = np.minimum(hair * 0.7, skin * 0.5) if r.hair in ("blond", "gray") else hair * 0.8
    pal[LIPS] = t.lips
    pal[MOUTH] = (0.22, 0.05, 0.06)
    pal[TEETH] = (0.98, 0.98, 0.96)
    pal[NOSE] = skin * 0.86
    pal[NOSTRIL] = skin * 0.45
    pal[BEARD] = hair * 0.75 + skin * 0.25
    pal[GLASSES] = r.glasses
    pal[EAR] = skin * 0.92
    pal[NECK] = skin * 0.88
    pal[SHIRT] = r.shirt
    for k, c in enumerate(r.clutter):
        pal[CLUTTER + k] = c[5:8]
    pal[BG_LABEL:] = gradient_palette(r.background[0], r.background[1])
    return pal


def _draw(canvas: np.ndarray, window, label: int, mask: np.ndarray) -> None:
    np.copyto(canvas[:, window[0], window[1]], np.uint8(label), where=mask)


def _draw_face(recs: Sequence[FaceRecord], grid: _Grid) -> np.ndarray:
    """Labels of the face frame, N×(ch+2)×(cw+2) uint8 (0 = not the face)."""
    n = len(recs)
    T = [r.traits for r in recs]
    C = np.zeros((n, grid.ch + 2, grid.cw + 2), np.uint8)
    W = grid.windows
    a = _col(t.face_width for t in T)
    b = _col(t.face_height for t in T)
    jaw = _col(t.jaw for t in T)
    style = [t.hair_style for t in T]
    ey = _col(t.eye_y for t in T)
    ex = _col(t.eye_spacing for t in T)
    my = _col(t.mouth_y for t in T)

    def head_halfwidth(v: np.ndarray) -> np.ndarray:
        vn = v / b
        hw = a * np.sqrt(np.maximum(1.0 - vn * vn, 0.0))
        hw *= 1.0 - 0.33 * jaw * np.square(np.maximum(vn, 0.0))
        return np.where(np.abs(vn) < 1.0, hw, -1.0)

    # hair behind the head: an elliptic crown with straight, slightly flaring sides down to the hair length
    w = W["all"]
    absu, v = w[3], w[4]
    hb_a = a + _col(0.06 + 0.025 * s for s in style)
    hb_b = b + 0.07
    vc = np.float32(-0.05)
    dv = (v - vc) / hb_b
    top = hb_a * np.sqrt(np.maximum(1.0 - dv * dv, 0.0))
    top = np.where(dv * dv < 1.0, top, -1.0)
    side = hb_a + 0.06 * (v - vc)
    hw = np.where(v < vc, top, side)
    bottom = _col((-0.18, 0.22, 0.78)[s] for s in style)
    hw = np.where(v < bottom, hw, -1.0)
    # ears sit beside the head at eye level; long hair covers them
    e = W["ears"]
    ecx = a - 0.01
    q = np.square((e[3] - ecx) * (1.0 / 0.05)) + np.square((e[4] - ey - 0.035) * (1.0 / 0.085))
    _draw(C, e, EAR, q < 1.0)
    _draw(C, w, HAIR_BACK, absu < hw)
    hw_head = head_halfwidth(v)
    _draw(C, w, SKIN, absu < hw_head)

    # beard: the head below a line from the sideburns under the cheeks to below the nose
    lw = W["lower"]
    male = _col(float(r.male) for r in recs)
    un = lw[2] / a
    beard_line = my - 0.035 - 0.2 * un * un + (1.0 - male) * 9.0
    hwl = head_halfwidth(lw[4])
    _draw(C, lw, BEARD, (lw[4] > beard_line) & (lw[3] < hwl))

    # hair on the head: above the hairline (higher in the middle) or, with bangs, a jagged fringe
    uw = W["upper"]
    slope = _col((0.9, 1.3, 1.6)[s] for s in style)
    hairline = _col(t.hairline for t in T) + slope * uw[2] * uw[2]
    saw = np.abs((uw[3] * 14.0) % 2.0 - 1.0)  # 0 … 1 zigzag
    fringe = _col(t.brow_y - 0.115 for t in T) - 0.03 * saw
    bangs = _col(float(r.bangs) for r in recs)
    hl = np.where(bangs > 0, np.maximum(hairline, fringe), hairline)
    hwu = head_halfwidth(uw[4]) + 0.012
    _draw(C, uw, HAIR, (uw[3] < hwu) & (uw[4] < hl))

    # nose: a wedge widening downwards with a rounded tip, darker skin, and two nostrils
    nw_ = W["nose"]
    big = _col(float(r.big_nose) for r in recs)
    nwid = _col(t.nose_width for t in T) * (1.0 + 0.7 * big)
    nlen = _col(t.nose_length for t in T) * (1.0 + 0.25 * big)
    nb = ey + 0.16 + 0.03 * big
    nt = nb - nlen
    v = nw_[4]
    tt = np.clip((v - nt) / (nb - nt), 0.0, 1.0)
    wedge = np.where((v > nt) & (v < nb), nwid * (0.25 + 0.55 * tt), -1.0)
    tr = 0.035 + 0.012 * big
    dt = (v - (nb - 0.01)) / tr
    tip = np.where(dt * dt < 1.0, nwid * np.sqrt(np.maximum(1.0 - dt * dt, 0.0)), -1.0)
    _draw(C, nw_, NOSE, nw_[3] < np.maximum(wedge, tip))
    q = np.square((nw_[3] - 0.5 * nwid) / (0.28 * nwid + 0.006)) + np.square((v - nb + 0.004) / 0.011)
    _draw(C, nw_, NOSTRIL, q < 1.0)

    # eyes: dark outline, white, iris and pupil shifted by the gaze
    ew = W["eyes"]
    eww = _col(t.eye_width for t in T)
    ehh = _col(t.eye_height for t in T)
    qe = np.square((ew[3] - ex) / eww) + np.square((ew[4] - ey) / ehh)
    gaze = _col({"left": -1.0, "front": 0.0, "right": 1.0}[r.gaze] for r in recs) * (eww * 0.5)
    sign = np.where(ew[2] < 0, np.float32(-1.0), np.float32(1.0))
    du = ew[2] - sign * ex - gaze
    dv2 = np.square(ew[4] - ey)
    ir = _col(t.iris_radius for t in T)
    qi = np.square(du / ir) + dv2 / np.square(ir)
    white = qe < 1.0
    _draw(C, ew, EYE_LINE, qe < 1.45)
    _draw(C, ew, EYE_WHITE, white)
    _draw(C, ew, IRIS, white & (qi < 1.0))
    _draw(C, ew, PUPIL, white & (qi < 0.2))

    # brows: thick tapered curves; the expression raises, tilts and arches them
    bw = W["brows"]
    inten = _col(r.intensity for r in recs)
    raise_, tilt, arch_x = (_col(_BROWS[r.expression][k] for r in recs) * inten for k in range(3))
    arch = _col(0.03 if r.arched_eyebrows else 0.008 for r in recs) + arch_x
    half = eww + 0.02
    t01 = (bw[3] - (ex - half)) / (2.0 * half)  # 0 at the inner end, 1 at the outer end
    inside = (t01 >= 0.0) & (t01 <= 1.0)
    centre = _col(t.brow_y for t in T) - raise_ - arch * 4.0 * t01 * (1.0 - t01) + tilt * (0.5 - t01)
    thick = np.where(inside, _col(t.brow_thickness for t in T) * (1.1 - 0.55 * t01), -1.0)
    _draw(C, bw, BROW, np.abs(bw[4] - centre) < thick)

    # glasses: two rings, a bridge and the temples (vanish when the record has none)
    gw_ = W["glasses"]
    glasses = _col(float(r.eyeglasses) for r in recs)
    gwid = eww + 0.03
    ghei = ehh + 0.028
    qg = np.square((gw_[3] - ex) / gwid) + np.square((gw_[4] - ey) / ghei)
    ring = (qg >= 1.0) & (qg < 1.0 + 0.55 * glasses)
    bridge = (gw_[3] < ex - gwid * 0.9) & (np.abs(gw_[4] - ey + 0.012) < 0.011 * glasses)
    temple = (
        (gw_[3] > ex + gwid * 0.95) & (gw_[3] < a + 0.02) & (np.abs(gw_[4] - ey + 0.02) < 0.009 * glasses)
    )
    _draw(C, gw_, GLASSES, ring | bridge | temple)

    # mouth: lips between two curves around a bent centre line, the opening inside, teeth at its top
    mw = W["mouth"]
    hw_, bend, up, down, lip, teeth = _mouth_params(recs)
    x = mw[2] / hw_
    env = np.sqrt(np.maximum(1.0 - x * x, 0.0))
    inside = x * x < 1.0
    centre = my + bend * x * x
    ui = centre - up * env
    li = centre + down * env
    thick = lip * np.sqrt(env) + 0.002
    uo = np.where(inside, ui - thick, 9.0)
    lo = li + thick
    v = mw[4]
    opening = (v > ui) & (v < li)
    _draw(C, mw, LIPS, (v > uo) & (v < lo))
    _draw(C, mw, MOUTH, opening)
    _draw(C, mw, TEETH, opening & (v < ui + teeth * env))
    return C


def _mouth_params(recs: Sequence[FaceRecord]) -> tuple[np.ndarray, ...]:
    cols: list[list[float]] = [[] for _ in range(6)]
    for r in recs:
        hw, bend, up, down, lip, teeth = _MOUTH[r.expression]
        i = r.intensity
        vals = [
            hw[0] + hw[1] * i,
            bend[0] + bend[1] * i,
            up[0] + up[1] * i,
            down[0] + down[1] * i,
            lip,
            teeth,
        ]
        if r.mouth_open and r.expression != "surprised":
            vals[2] += 0.006
            vals[3] += 0.018
            vals[5] = max(vals[5], 0.012)
        vals[0] *= r.traits.mouth_scale
        for c, val in zip(cols, vals):
            c.append(val)
    return tuple(_col(c) for c in cols)


_LIGHT = {"left": (-0.7, -0.2, 1.03), "front": (0.0, -0.4, 1.07), "right": (0.7, -0.2, 1.03)}


def _render_chunk(recs: Sequence[FaceRecord], grid: _Grid) -> np.ndarray:
    """Clean renders of ``recs``, N×S×S×3 float32 in [0, 255]."""
    n = len(recs)
    x = grid.x
    face = _draw_face(recs, grid)

    # image-space layers: background gradient, clutter, shirt and neck
    L = gradient_labels(x, [r.background[2] for r in recs])
    xr, yc = x[None, None, :], x[None, :, None]
    for j, r in enumerate(recs):
        for k, (rect, cx, cy, rx, ry, *_) in enumerate(r.clutter):
            stamp(L[j], x, CLUTTER + k, cx, cy, rx, ry, rect > 0)
    fx = _col(r.center[0] for r in recs)
    fy = _col(r.center[1] for r in recs)
    s = _col(r.scale for r in recs)
    dx = (xr - fx) / (0.72 * s)
    dy = (yc - fy - 1.25 * s) / (0.5 * s)
    np.copyto(L, np.uint8(SHIRT), where=(dx * dx + dy * dy) < 1.0)
    neck = (np.abs(xr - fx) < 0.14 * s) & (yc > fy + 0.2 * s) & (yc < fy + 0.95 * s)
    np.copyto(L, np.uint8(NECK), where=neck)

    # pose: image point p = centre + s · R(θ) · (u, v); sample the face frame at each image subsample
    cos = _col(math.cos(r.rotation) for r in recs)
    sin = _col(math.sin(r.rotation) for r in recs)
    k = 1.0 / (s * np.float32(grid.step))
    fu = ((xr - fx) * cos * k + np.float32(1.0 - _FACE_U[0] / grid.step)) + (yc - fy) * sin * k
    fv = ((xr - fx) * (-sin) * k + np.float32(1.0 - _FACE_V[0] / grid.step)) + (yc - fy) * cos * k
    np.clip(fu, 0.0, grid.cw + 1, out=fu)
    np.clip(fv, 0.0, grid.ch + 1, out=fv)
    np.floor(fu, out=fu)
    np.floor(fv, out=fv)
    fv *= np.float32(grid.cw + 2)
    fv += fu  # the flat index, exact in float32 (below 2**24)
    idx = fv.astype(np.intp)
    flat = face.reshape(n, -1)
    F = np.empty(idx.shape, np.uint8)
    for j in range(n):
        np.take(flat[j], idx[j], out=F[j], mode="clip")

    # colours; the illumination shades the face (not the background) by a smooth function of the face-frame
    # u, applied per output pixel to the face's share of each box sum — exact up to the shading's variation
    # inside one pixel (< 0.5 %). Label 0 is black in every palette, so the two gathers split the pixels.
    palettes = pack_palette(np.stack([_palette(r) for r in recs])).reshape(n, PALETTE_SIZE)
    lit = unpack_sums(box_sum(gather_colours(F, palettes), grid.ss))
    rest = unpack_sums(box_sum(gather_colours(np.where(F > 0, np.uint8(0), L), palettes), grid.ss))
    xs = pixel_centres(grid.size)
    u = ((xs[None, None, :] - fx) * cos + (xs[None, :, None] - fy) * sin) / s
    np.clip(u, -0.7, 0.7, out=u)
    lin, quad, gain = (_col(_LIGHT[r.illumination][j] for r in recs) for j in range(3))
    m = (quad * u + lin) * u + gain
    lit *= m[..., None]
    lit += rest
    lit *= np.float32(1.0 / (grid.ss * grid.ss))
    np.clip(lit, 0.0, 255.0, out=lit)
    return lit


def _render(
    records: Sequence[FaceRecord], image_size: int, supersample: int | None, noise: bool
) -> np.ndarray:
    records = list(records)
    grid = _grid(int(image_size), supersample_factor(image_size, supersample))
    chunk = max(1, (1 << 18) // (grid.g * grid.g))
    dtype = np.uint8 if noise is not None else np.float32
    out = np.empty((len(records), image_size, image_size, 3), dtype)
    for i in range(0, len(records), chunk):
        part = records[i : i + chunk]
        clean = _render_chunk(part, grid)
        if noise is None:
            out[i : i + chunk] = clean * np.float32(1.0 / 255.0)
        else:
            stds = [r.noise_std if noise else 0.0 for r in part]
            out[i : i + chunk] = quantise(clean, stds, [r.noise_seed for r in part])
    return out


def render_clean(
    records: Sequence[FaceRecord], image_size: int = 64, supersample: int | None = None
) -> np.ndarray:
    """Noise-free renders before quantisation, N×S×S×3 float32 in [0, 1]."""
    return _render(records, image_size, supersample, None)


def render_batch(
    records: Sequence[FaceRecord], image_size: int = 64, supersample: int | None = None, noise: bool = True
) -> np.ndarray:
    """Renders of ``records``, N×S×S×3 uint8; each image depends only on its record (and the size)."""
    return _render(records, image_size, supersample, bool(noise))


def render(
    record: FaceRecord, image_size: int = 64, supersample: int | None = None, noise: bool = True
) -> np.ndarray:
    """One render, H×W×3 uint8."""
    return render_batch([record], image_size, supersample, noise)[0]


def change_mask(
    record: FaceRecord,
    changed: FaceRecord,
    image_size: int = 64,
    supersample: int | None = None,
    eps: float = 1e-3,
) -> np.ndarray:
    """H×W bool: the pixels whose clean renders differ by more than ``eps`` (of [0, 1]) — the true change region."""
    a, b = render_clean([record, changed], image_size, supersample)
    return np.abs(a - b).max(axis=-1) > eps


def region_box(
    record: FaceRecord, region: str, image_size: int, margin: int = 1
) -> tuple[int, int, int, int]:
    """Pixel box ``(row0, row1, col0, col1)`` (end-exclusive) holding a face-frame region of :data:`REGIONS`
    after the record's pose, widened by ``margin`` pixels."""
    _check("region", region, tuple(REGIONS))
    u0, u1, v0, v1 = REGIONS[region]
    cx, cy = record.center
    s, c, sn = record.scale, math.cos(record.rotation), math.sin(record.rotation)
    xs, ys = [], []
    for u in (u0, u1):
        for v in (v0, v1):
            xs.append(cx + s * (c * u - sn * v))
            ys.append(cy + s * (sn * u + c * v))

    def px(t: float) -> float:
        return (t + 1.0) / 2.0 * image_size

    r0 = max(0, int(math.floor(px(min(ys)))) - margin)
    r1 = min(image_size, int(math.ceil(px(max(ys)))) + margin)
    c0 = max(0, int(math.floor(px(min(xs)))) - margin)
    c1 = min(image_size, int(math.ceil(px(max(xs)))) + margin)
    return r0, r1, c0, c1
