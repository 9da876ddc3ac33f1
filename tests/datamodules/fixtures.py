"""Test helpers for the real-dataset readers: the stand-in layouts of :mod:`datamodules.fake_layouts`, a corrupted
file, and a short training run on a layout."""

from __future__ import annotations

import warnings
from pathlib import Path

from datamodules.fake_layouts import (  # noqa: F401  (re-exported for the tests)
    AFHQ_DOMAINS,
    BU3DFE_SUBJECTS,
    CELEBA_ATTRIBUTES,
    multipie_path,
    write_afhq,
    write_bu3dfe,
    write_celeba,
    write_celeba_hq,
    write_celeba_hq_v2,
    write_class_folders,
    write_cyclegan,
    write_multipie,
)

# what the short training runs override: tiny nets, 32 px, 2 images a batch, no worker processes
TINY_RUN = [
    "method=aggan", "trainer.fast_dev_run=true", "method.generator.ngf=8", "method.generator.n_blocks=1",
    "method.discriminator.ndf=8", "data.image_size=32", "data.batch_size=2", "data.num_workers=0",
]


def truncate(path: Path) -> Path:
    """Cut ``path`` to half its bytes (a truncated download)."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def train_once(make_cfg, data: str, root: Path, *extra: str) -> dict:
    """A fast_dev_run of aggan two_domain with tiny nets on ``data`` at ``root``; the train() result."""
    from suite.training import train

    cfg = make_cfg(f"data={data}", f"data.root={root}", *TINY_RUN, *extra)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return train(cfg)
