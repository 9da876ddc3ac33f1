"""The digit datasets' files as torchvision keeps them on disk (nothing is downloaded), read into arrays.

- MNIST (LeCun et al.): ``<root>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (torchvision's
  ``MNIST(root)`` folder; the ``.gz`` files as downloaded are read too): IDX files — a big-endian magic number
  (``0x00000803`` images, ``0x00000801`` labels), the dimensions, then uint8 values. 60,000 train and 10,000
  test digits, 28×28 grey.
- USPS (Hull 1994, libsvm's copy): ``<root>/usps.bz2`` (train, 7,291) and ``<root>/usps.t.bz2`` (test, 2,007),
  torchvision's ``USPS(root)`` files: one digit a line, ``<label 1–10> 1:<v> … 256:<v>`` with values in
  [−1, 1]; torchvision's reading: pixels ``(v + 1) / 2 · 255`` as uint8, 16×16, label − 1.
- MNIST-M (Ganin et al. 2016; torchvision has no reader): the release ``mnist_m.tar.gz`` unpacked at
  ``<root>/mnist_m/``: ``mnist_m_train/*.png`` with ``mnist_m_train_labels.txt`` (``00000000.png 5`` a line),
  ``mnist_m_test/`` with ``mnist_m_test_labels.txt``. 59,001 train and 9,001 test digits, 28×28 colour.

A missing file is one DatasetError naming every file the dataset needs.
"""

from __future__ import annotations

import bz2
import functools
import gzip
from pathlib import Path

import numpy as np

from datamodules.images import reason
from datamodules.layouts import malformed, read_annotation
from suite.errors import DatasetError

DATASETS = ("mnist", "usps", "mnistm")
SPLITS = ("train", "test")
IDX_IMAGES, IDX_LABELS = 0x00000803, 0x00000801
MNIST_PREFIX = {"train": "train", "test": "t10k"}
USPS_FILE = {"train": "usps.bz2", "test": "usps.t.bz2"}
LAYOUT = {
    "mnist": "torchvision's MNIST/raw/{train,t10k}-images-idx3-ubyte and -labels-idx1-ubyte (or their .gz)",
    "usps": "torchvision's usps.bz2 and usps.t.bz2 (libsvm format)",
    "mnistm": "the MNIST-M release unpacked: mnist_m/mnist_m_{train,test}/*.png and mnist_m_{train,test}_labels.txt",
}


def mnist_files(root: Path, split: str) -> tuple[Path, Path]:
    """(images, labels) IDX files of an MNIST split: the plain file, else its ``.gz``; a DatasetError naming both
    forms of every missing file."""
    raw = root / "MNIST" / "raw"
    found, missing = [], []
    for kind in ("images-idx3", "labels-idx1"):
        plain = raw / f"{MNIST_PREFIX[split]}-{kind}-ubyte"
        gz = plain.with_name(plain.name + ".gz")
        path = plain if plain.is_file() else gz if gz.is_file() else None
        if path is None:
            missing.append(f"{plain} (or {gz.name})")
        found.append(path)
    if missing:
        raise DatasetError(f"data=digits: MNIST's {split} split needs {' and '.join(missing)}; expected {LAYOUT['mnist']}.")
    return found[0], found[1]


def usps_file(root: Path, split: str) -> Path:
    path = root / USPS_FILE[split]
    if not path.is_file():
        raise DatasetError(f"data=digits: USPS's {split} split needs {path}; expected {LAYOUT['usps']}.")
    return path


def mnistm_files(root: Path, split: str) -> tuple[Path, Path]:
    """(image folder, labels file) of an MNIST-M split."""
    base = root / "mnist_m"
    folder, labels = base / f"mnist_m_{split}", base / f"mnist_m_{split}_labels.txt"
    missing = [str(p) for p in (folder, labels) if not p.exists()]
    if missing:
        raise DatasetError(f"data=digits: MNIST-M's {split} split needs {' and '.join(missing)}; expected {LAYOUT['mnistm']}.")
    return folder, labels


def _read_bytes(path: Path) -> bytes:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise DatasetError(f"data=digits: cannot read {path} ({reason(exc)}).") from exc


@functools.lru_cache(maxsize=8)
def read_idx(path: Path) -> np.ndarray:
    """An IDX file (MNIST) as a uint8 array: N×H×W images or N labels (cached per process)."""
    data = _read_bytes(path)
    magic = int.from_bytes(data[:4], "big") if len(data) >= 4 else -1
    if magic not in (IDX_IMAGES, IDX_LABELS):
        raise DatasetError(f"data=digits: {path} is not an MNIST IDX file (magic number {magic:#010x}, expected "
                           f"{IDX_IMAGES:#010x} or {IDX_LABELS:#010x}).")
    ndim = magic & 0xFF
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise DatasetError(f"data=digits: {path} holds {body.size} values where its header announces {shape}.")
    return body.reshape(shape)


@functools.lru_cache(maxsize=4)
def read_usps(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A libsvm USPS file as (N×16×16 uint8 images, N labels 0–9), read as torchvision reads it (cached)."""
    try:
        with bz2.open(path, "rt") as f:
            lines = [line.split() for line in f if line.strip()]
    except OSError as exc:
        raise DatasetError(f"data=digits: cannot read {path} ({reason(exc)}).") from exc
    images, labels = [], []
    for i, fields in enumerate(lines, 1):
        values = [v.split(":")[-1] for v in fields[1:]]
        if len(values) != 256:
            raise malformed("digits", path, i, "a label and 256 index:value pairs", " ".join(fields))
        images.append(np.asarray(values, dtype=np.float32))
        labels.append(int(float(fields[0])) - 1)
    pixels = ((np.stack(images).reshape(-1, 16, 16) + 1) / 2 * 255).astype(np.uint8)
    return pixels, np.asarray(labels, dtype=np.int64)


def read_mnistm_labels(labels: Path) -> list[tuple[str, int]]:
    """MNIST-M's ``<file> <label>`` lines."""
    out = []
    for i, line in enumerate(read_annotation("digits", labels, LAYOUT["mnistm"]), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or not fields[1].isdigit():
            raise malformed("digits", labels, i, "'<file>.png <digit>'", line)
        out.append((fields[0], int(fields[1])))
    return out
