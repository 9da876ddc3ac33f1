"""Stand-in datasets in the official on-disk layouts (../shared/specs/datasets.md), written from generated images.

Each writer reproduces its dataset's exact file names, folder depth, header lines and spacing (CelebA's
width-2 ``-1  1`` values, BU-3DFE's ``F0001_AN01WH_F2D.bmp`` codes, Multi-PIE's
``session02/multiview/108/01/05_1/108_02_01_051_17.png``, AR Face's headerless ``M-001-01.raw``), with small smooth random pictures in place of
photographs. Nothing here is real data: the loading benchmark (:mod:`datamodules.bench`) writes them at the
datasets' real image sizes into a temporary folder, the tests (``tests/datamodules``) tiny ones.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

# CelebA's 40 attributes in the order of list_attr_celeba.txt
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair "
    "Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup "
    "High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose "
    "Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat "
    "Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young"
).split()
# Multi-PIE: (session, recording) → expression
MULTIPIE_EXPRESSIONS = {
    (1, 1): "neutral", (2, 1): "neutral", (3, 1): "neutral", (4, 1): "neutral", (4, 2): "neutral",
    (1, 2): "smile", (3, 2): "smile", (2, 2): "surprise", (2, 3): "squint", (3, 3): "disgust", (4, 3): "scream",
}
BU3DFE_CODES = ("AN", "DI", "FE", "HA", "SA", "SU")  # with intensities 01–04; neutral is NE00
BU3DFE_SUBJECTS = tuple(f"F{i:04d}" for i in range(1, 7)) + tuple(f"M{i:04d}" for i in range(1, 7))
RACES = ("WH", "BL", "AE", "AM", "IN", "LA")
AFHQ_DOMAINS = ("cat", "dog", "wild")
ARFACE_PERSONS = ("M-001", "M-002", "M-003", "W-001", "W-002", "W-003")
ARFACE_IMAGES = (1, 2, 3, 4, 8, 14, 15, 16, 17, 24)  # both sessions' four expressions, a sun-glasses and a scarf image
def picture(rng: np.random.Generator, width: int, height: int, noise: float = 0.0) -> Image.Image:
    """A smooth random RGB picture (a bicubic blow-up of 4×4 random colours); ``noise`` adds Gaussian grain of that
    standard deviation (grey levels), so JPEG/PNG files weigh and decode like photographs (the benchmark)."""
    seed = Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8))
    img = seed.resize((width, height), Image.Resampling.BICUBIC)
    if noise > 0:
        grain = rng.normal(0.0, noise, (height, width, 3)).astype(np.float32)
        img = Image.fromarray(np.clip(np.asarray(img, dtype=np.float32) + grain, 0, 255).astype(np.uint8))
    return img


def _save(img: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".png":
        img.save(path, compress_level=1)
    elif path.suffix == ".bmp":
        img.save(path)
    else:
        img.save(path, quality=90)


# ---------------------------------------------------------------------------------------------- CelebA
def celeba_attributes(n: int, seed: int = 0) -> np.ndarray:
    """n × 40 values ±1: random, except Smiling = +1 on odd rows (000002.jpg, 000004.jpg …), and the hair
    colours cycling Black, Blond, Brown, Black+Blond (rows 4k+3 have two, so no single hair domain), never Gray."""
    rng = np.random.default_rng(seed)
    values = rng.choice(np.array([-1, 1]), size=(n, len(CELEBA_ATTRIBUTES)))
    col = CELEBA_ATTRIBUTES.index
    values[:, col("Smiling")] = np.where(np.arange(n) % 2 == 1, 1, -1)
    hair = {0: ("Black_Hair",), 1: ("Blond_Hair",), 2: ("Brown_Hair",), 3: ("Black_Hair", "Blond_Hair")}
    for name in ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair"):
        values[:, col(name)] = -1
    for i in range(n):
        for name in hair[i % 4]:
            values[i, col(name)] = 1
    return values


def celeba_partition(n: int) -> list[int]:
    """0/1/2 per row, contiguous like the real file: the first 60 % train, the next 20 % val, the rest test."""
    return [0 if i < 0.6 * n else 1 if i < 0.8 * n else 2 for i in range(n)]


def celeba_attribute_text(files: list[str], values: np.ndarray, newline: str = "\n") -> str:
    """list_attr_celeba.txt: the count, the names (a trailing space, as in the release), then each file name and
    its values right-aligned in width 2 and separated by one space (``-1  1  1 -1``)."""
    lines = [str(len(files)), " ".join(CELEBA_ATTRIBUTES) + " "]
    lines += [f"{f} " + " ".join(f"{v:2d}" for v in row) for f, row in zip(files, values.tolist())]
    return newline.join(lines) + newline


def write_celeba(root: Path, n: int = 24, form: str = "release", size: tuple[int, int] = (178, 218),
                 seed: int = 0, newline: str = "\n") -> dict:
    """CelebA's release layout (``form="release"``: Img/, Anno/, Eval/) or torchvision's (``"flat"``: everything in
    ``root/celeba/``), n aligned images 000001.jpg … of ``size`` (the real 178×218 by default). Returns the
    file names, the n × 40 ±1 attribute values and the 0/1/2 partition."""
    rng = np.random.default_rng(seed)
    files = [f"{i:06d}.jpg" for i in range(1, n + 1)]
    values = celeba_attributes(n, seed)
    partition = celeba_partition(n)
    if form == "release":
        images, anno, evaluation = root / "Img" / "img_align_celeba", root / "Anno", root / "Eval"
    else:
        images = anno = evaluation = root / "celeba"
        images = images / "img_align_celeba"
    for f in files:
        _save(picture(rng, *size), images / f)
    anno.mkdir(parents=True, exist_ok=True)
    evaluation.mkdir(parents=True, exist_ok=True)
    (anno / "list_attr_celeba.txt").write_bytes(celeba_attribute_text(files, values, newline).encode())
    (anno / "identity_CelebA.txt").write_text("".join(f"{f} {i % 7 + 1}\n" for i, f in enumerate(files)))
    (anno / "list_bbox_celeba.txt").write_text(
        f"{n}\nimage_id x_1 y_1 width height\n" + "".join(f"{f}    95  71 226 313\n" for f in files)
    )
    landmarks = "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y"
    for name in ("list_landmarks_align_celeba.txt", "list_landmarks_celeba.txt"):
        (anno / name).write_text(
            f"{n}\n{landmarks}\n" + "".join(f"{f}    69  109  106  113   77  142   73  152  108  154\n" for f in files)
        )
    (evaluation / "list_eval_partition.txt").write_text("".join(f"{f} {p}\n" for f, p in zip(files, partition)))
    return {"files": files, "attrs": values, "partition": partition}


# ---------------------------------------------------------------------------------------------- CelebA-HQ
def write_celeba_hq(root: Path, n: int = 16, size: int = 64, seed: int = 1, celeba_root: Path | None = None,
                    noise: float = 0.0) -> dict:
    """CelebAMask-HQ (``root`` = the CelebAMask-HQ folder): CelebA-HQ-img/0.jpg …, the attribute file (count,
    names, rows ``0.jpg  -1 1 …``) and CelebA-HQ-to-CelebA-mapping.txt (header ``idx orig_idx orig_file``,
    0-based orig_idx, aligned columns). With ``celeba_root``, also writes the CelebA partition of the mapped
    originals at ``celeba_root/Eval/list_eval_partition.txt``: HQ images 0–9 train, 10–12 val, 13– test."""
    rng = np.random.default_rng(seed)
    values = celeba_attributes(n, seed)
    for i in range(n):
        _save(picture(rng, size, size, noise), root / "CelebA-HQ-img" / f"{i}.jpg")
    rows = [f"{i}.jpg  " + " ".join(str(v) for v in row) for i, row in enumerate(values.tolist())]
    (root / "CelebAMask-HQ-attribute-anno.txt").write_text("\n".join([str(n), " ".join(CELEBA_ATTRIBUTES), *rows]) + "\n")
    orig = [1000 * i + 612 for i in range(n)]  # 0-based orig_idx; the file is orig_idx + 1
    mapping = ["idx orig_idx orig_file"] + [f"{i:<9d}{o:<9d}{o + 1:06d}.jpg" for i, o in enumerate(orig)]
    (root / "CelebA-HQ-to-CelebA-mapping.txt").write_text("\n".join(mapping) + "\n")
    split = [0 if i < 10 else 1 if i < 13 else 2 for i in range(n)]
    if celeba_root is not None:
        (celeba_root / "Eval").mkdir(parents=True, exist_ok=True)
        lines = [f"{o + 1:06d}.jpg {s}" for o, s in zip(orig, split)] + ["000001.jpg 0"]  # and an unmapped image
        (celeba_root / "Eval" / "list_eval_partition.txt").write_text("\n".join(sorted(lines)) + "\n")
    return {"attrs": values, "orig": orig, "split": split}


def write_celeba_hq_v2(root: Path, per: int = 3, size: int = 48, seed: int = 2) -> Path:
    """StarGAN v2's CelebA-HQ: ``root/celeba_hq/{train,val}/{female,male}/<id>.jpg``; ``per`` images each in val,
    twice as many in train. Returns the celeba_hq folder."""
    rng = np.random.default_rng(seed)
    base = root / "celeba_hq"
    k = 0
    for split, count in (("train", 2 * per), ("val", per)):
        for gender in ("female", "male"):
            for _ in range(count):
                k += 1
                _save(picture(rng, size, size), base / split / gender / f"{k * 37:06d}.jpg")
    return base


# ---------------------------------------------------------------------------------------------- Multi-PIE
def multipie_path(root: Path, subject: int, session: int, recording: int, camera: str, illumination: int) -> Path:
    """``data/session0S/multiview/SSS/RR/CC_C/SSS_0S_RR_CCC_II.png``."""
    name = f"{subject:03d}_{session:02d}_{recording:02d}_{camera.replace('_', '')}_{illumination:02d}.png"
    return (root / "data" / f"session{session:02d}" / "multiview" / f"{subject:03d}" / f"{recording:02d}" / camera / name)


def write_multipie(root: Path, subjects=tuple(range(1, 13)), cameras=("05_1", "14_0"), illuminations=(0, 7),
                   size: tuple[int, int] = (260, 240), seed: int = 3, noise: float = 0.0) -> Path:
    """Multi-PIE's multiview tree: every subject in every (session, recording) of the expression map, for each
    camera and illumination. The real images are 640×480; ``size`` must hold the 220×220 crop. The files
    cycle through 16 encoded pictures (encoding hundreds of PNGs would dominate the tests)."""
    rng = np.random.default_rng(seed)
    pool = []
    for _ in range(16):
        buffer = io.BytesIO()
        picture(rng, *size, noise).save(buffer, format="PNG", compress_level=1)
        pool.append(buffer.getvalue())
    k = 0
    for subject in subjects:
        for session, recording in MULTIPIE_EXPRESSIONS:
            for camera in cameras:
                for illumination in illuminations:
                    path = multipie_path(root, subject, session, recording, camera, illumination)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(pool[k % len(pool)])
                    k += 1
    return root


# ---------------------------------------------------------------------------------------------- BU-3DFE
def bu3dfe_files(subject: str, race: str) -> list[str]:
    """The 25 2D textures of one subject: NE00 and each expression at intensities 01–04."""
    codes = ["NE00"] + [f"{c}{k:02d}" for c in BU3DFE_CODES for k in range(1, 5)]
    return [f"{subject}_{code}{race}_F2D.bmp" for code in codes]


def write_bu3dfe(root: Path, subjects=BU3DFE_SUBJECTS, size: int = 40, seed: int = 4) -> Path:
    """BU-3DFE's subject folders ``F0001/F0001_AN01WH_F2D.bmp`` … (with ``_F3D.wrl`` and ``_F3D.bnd`` beside,
    which the reader ignores). The real textures are 512×512."""
    rng = np.random.default_rng(seed)
    for k, subject in enumerate(subjects):
        folder = root / subject
        for name in bu3dfe_files(subject, RACES[k % len(RACES)]):
            _save(picture(rng, size, size), folder / name)
            stem = name[: -len("_F2D.bmp")]
            (folder / f"{stem}_F3D.wrl").write_text("#VRML V2.0 utf8\n")
            (folder / f"{stem}_F3D.bnd").write_text("1 0.0 0.0 0.0\n")
    return root


# ---------------------------------------------------------------------------------------------- AFHQ
def write_afhq(root: Path, version: int = 1, train: int = 4, test: int = 2, size: int = 64, seed: int = 5,
               noise: float = 0.0) -> Path:
    """AFHQ v1 (``root/afhq/{train,val}/{cat,dog,wild}/flickr_cat_000123.jpg``; returns root/afhq) or v2
    (``root/{train,test}/…/*.png``; returns root)."""
    rng = np.random.default_rng(seed)
    base = root / "afhq" if version == 1 else root
    ext, held_out = (".jpg", "val") if version == 1 else (".png", "test")
    k = 0
    for split, count in (("train", train), (held_out, test)):
        for domain in AFHQ_DOMAINS:
            for _ in range(count):
                k += 1
                source = "flickr" if k % 3 else "pixabay"
                _save(picture(rng, size, size, noise), base / split / domain / f"{source}_{domain}_{k * 13:06d}{ext}")
    return base


# ---------------------------------------------------------------------------------------------- folders
def write_cyclegan(root: Path, train: int = 4, test: int = 2, size: int = 48, seed: int = 6) -> Path:
    """CycleGAN's unpaired layout: ``trainA/ trainB/ testA/ testB/`` of ``n_A.jpg`` images."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", train), ("test", test)):
        for domain in ("A", "B"):
            for i in range(count):
                _save(picture(rng, size, size), root / f"{split}{domain}" / f"{i + 1}_{domain}.jpg")
    return root


def write_class_folders(root: Path, classes=("apple", "orange", "pear"), per: int = 6, size: int = 40, seed: int = 7) -> Path:
    """One folder per class (``root/apple/*.png``), no split; one nested subfolder to check recursion."""
    rng = np.random.default_rng(seed)
    for c in classes:
        for i in range(per):
            sub = root / c / ("nested" if i == 0 else "")
            _save(picture(rng, size, size), sub / f"{c}_{i:03d}.png")
    (root / "notes.txt").write_text("not a class")
    return root


# ---------------------------------------------------------------------------------------------- AR Face
def arface_raw_bytes(pixels: np.ndarray, order: str = "planar") -> bytes:
    """H×W×3 uint8 pixels as a headerless AR Face ``.raw``: ``planar`` an R, a G and a B plane of H rows × W (the
    release, as its public readers decode it), ``interleaved`` RGB per pixel."""
    pixels = np.asarray(pixels, dtype=np.uint8)
    return (pixels.transpose(2, 0, 1) if order == "planar" else pixels).tobytes()


def write_arface(root: Path, persons=ARFACE_PERSONS, images=ARFACE_IMAGES, size: tuple[int, int] = (48, 36),
                 fmt: str = "bmp", raw_order: str = "planar", seed: int = 8) -> Path:
    """AR Face's flat folder ``M-001-01.bmp`` … (``fmt`` bmp | png | jpg), or the release's headerless ``.raw``
    files (``fmt="raw"``: ``size`` = (width, height) RGB in ``raw_order``; the real ones are 768×576), with a
    README.txt the reader ignores. A seed draws the same pictures in every format (the .raw/.bmp comparison)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for person in persons:
        for image in images:
            img = picture(rng, *size)
            path = root / f"{person}-{image:02d}.{fmt}"
            if fmt == "raw":
                path.write_bytes(arface_raw_bytes(np.asarray(img), raw_order))
            else:
                _save(img, path)
    (root / "README.txt").write_text("AR Face stand-in: generated pictures, no real faces\n")
    return root


# ---------------------------------------------------------------------------------------------- pix2pix maps
def write_maps(root: Path, train: int = 4, val: int = 3, size: int = 32, seed: int = 9) -> Path:
    """pix2pix's maps: ``train/1.jpg …`` and ``val/1.jpg …``, each a ``2·size × size`` JPEG with the "photo" on
    the left half and the "map" on the right (the real ones: 1200×600, 1,096 train and 1,098 val pairs). The map of
    pair k is the photo's colours inverted, so a test can tell the halves apart. Returns root."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", train), ("val", val)):
        for k in range(1, count + 1):
            photo = np.asarray(picture(rng, size, size))
            _save(Image.fromarray(np.concatenate([photo, 255 - photo], axis=1)), root / split / f"{k}.jpg")
    return root


# ---------------------------------------------------------------------------------------------- digits
def idx_bytes(values: np.ndarray) -> bytes:
    """uint8 ``values`` (N labels or N×H×W images) as an IDX file: magic 0x0801 / 0x0803, big-endian sizes."""
    values = np.asarray(values, dtype=np.uint8)
    header = (0x0800 + values.ndim).to_bytes(4, "big") + b"".join(int(n).to_bytes(4, "big") for n in values.shape)
    return header + values.tobytes()


def digit_pictures(rng: np.random.Generator, digits: np.ndarray, side: int) -> np.ndarray:
    """N×side×side uint8 "digits": a bright bar whose row is the digit (so a classifier can learn them)."""
    images = rng.integers(0, 40, (len(digits), side, side), dtype=np.uint8)
    for i, d in enumerate(digits):
        row = int(d) * side // 10
        images[i, row: row + max(1, side // 10), 2: side - 2] = 255
    return images


def write_mnist(root: Path, train: int = 20, test: int = 10, gz: bool = False, seed: int = 10) -> dict:
    """torchvision's MNIST folder ``root/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (``gz``: the
    downloaded ``.gz`` files instead), 28×28 digits with labels cycling 0–9. Returns split → labels."""
    rng = np.random.default_rng(seed)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, prefix, n in (("train", "train", train), ("test", "t10k", test)):
        digits = np.arange(n) % 10
        for kind, values in (("images-idx3", digit_pictures(rng, digits, 28)), ("labels-idx1", digits)):
            path = raw / f"{prefix}-{kind}-ubyte"
            data = idx_bytes(values)
            if gz:
                import gzip

                path = path.with_name(path.name + ".gz")
                data = gzip.compress(data)
            path.write_bytes(data)
        out[split] = digits
    return out


def write_usps(root: Path, train: int = 20, test: int = 10, seed: int = 11) -> dict:
    """torchvision's USPS files ``root/usps.bz2`` and ``root/usps.t.bz2`` (libsvm: ``<label 1–10> 1:<v> …
    256:<v>``, values in [−1, 1]), 16×16 digits with labels cycling 0–9. Returns split → labels (0–9)."""
    import bz2

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, name, n in (("train", "usps.bz2", train), ("test", "usps.t.bz2", test)):
        digits = (np.arange(n) + 3) % 10
        pixels = digit_pictures(rng, digits, 16).astype(np.float64) / 255 * 2 - 1
        lines = [f"{d + 1} " + " ".join(f"{j + 1}:{v:.6f}" for j, v in enumerate(img.ravel()))
                 for d, img in zip(digits, pixels)]
        (root / name).write_bytes(bz2.compress(("\n".join(lines) + "\n").encode()))
        out[split] = digits
    return out


def write_mnistm(root: Path, train: int = 20, test: int = 10, seed: int = 12) -> dict:
    """The MNIST-M release unpacked at ``root/mnist_m/``: ``mnist_m_{train,test}/00000000.png …`` (28×28
    colour) and ``mnist_m_{train,test}_labels.txt`` (``00000000.png 5`` a line). Returns split → labels."""
    rng = np.random.default_rng(seed)
    base = root / "mnist_m"
    out = {}
    for split, n in (("train", train), ("test", test)):
        digits = (np.arange(n) + 5) % 10
        grey = digit_pictures(rng, digits, 28)
        names = [f"{i:08d}.png" for i in range(n)]
        for name, img in zip(names, grey):
            colour = np.asarray(picture(rng, 28, 28)).astype(np.int16)
            _save(Image.fromarray(np.abs(colour - img[..., None]).astype(np.uint8)), base / f"mnist_m_{split}" / name)
        (base / f"mnist_m_{split}_labels.txt").write_text("".join(f"{f} {d}\n" for f, d in zip(names, digits)))
        out[split] = digits
    return out
