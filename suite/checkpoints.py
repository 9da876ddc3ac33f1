"""Reading and checking checkpoints before anything is built from them."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from suite import __version__
from suite.errors import CheckpointError

SUPPORTED_FORMATS = (1,)


def read_checkpoint(path: str | os.PathLike, expected_method: str | None = None) -> dict:
    """Load a suite checkpoint with ``weights_only=True`` (no code runs from the file) and check it.

    Raises CheckpointError with one sentence when the file is missing, unreadable/truncated, not a suite
    checkpoint, of an unknown format version, or from another method than ``expected_method``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}; pass ckpt_path=<run>/checkpoints/last.ckpt of an existing run.")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, wrong file type, pickled code objects …
        raise CheckpointError(
            f"the checkpoint {path} cannot be read ({type(exc).__name__}); it is truncated, corrupt or not a checkpoint of this suite — use another (e.g. an earlier one from <run>/checkpoints/)."
        ) from None
    suite = ckpt.get("suite") if isinstance(ckpt, dict) else None
    if not suite:
        raise CheckpointError(f"{path} is not a checkpoint of this suite (no 'suite' entry); only checkpoints written by train.py can be resumed or evaluated.")
    if suite.get("format") not in SUPPORTED_FORMATS:
        raise CheckpointError(
            f"{path} has checkpoint format {suite.get('format')} (suite {suite.get('suite_version')}), this suite {__version__} reads formats {SUPPORTED_FORMATS}; use the suite version that wrote it."
        )
    if expected_method is not None and suite.get("method") != expected_method:
        raise CheckpointError(
            f"{path} was trained with method={suite.get('method')}, not method={expected_method}; pass method={suite.get('method')} or a checkpoint of {expected_method}."
        )
    return ckpt


# Facts of the data a checkpoint's networks are shaped for; resuming with other values would fail deep inside
# Lightning (or, for fully convolutional nets, silently train on something else).
DATA_FACTS = ("image_size", "channels", "num_domains", "domain_names", "attr_names", "direction")


def check_resume_compatible(ckpt: dict, data_info: dict, path: str | os.PathLike) -> None:
    """Raise CheckpointError (one sentence) when the data of a resumed run differs from the checkpoint's."""
    stored = ckpt["suite"].get("data_info") or {}
    for key in DATA_FACTS:
        if key in stored and key in data_info and stored[key] != data_info[key]:
            raise CheckpointError(
                f"{path} was trained with data {key}={stored[key]}, but this run has {key}={data_info[key]}; resume with "
                f"the checkpoint's data settings (e.g. data.{key}={stored[key]}) or start a new run without ckpt_path."
            )
