"""Where fitted evaluation classifiers are kept: ``<cache_dir>/evalclf-<key>.pt`` (a state_dict) and
``evalclf-<key>.json`` (its settings and real-test accuracy), keyed by everything that defines the classifier."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from suite.errors import ConfigError

CACHE_FORMAT = 1  # bump when the architectures or the training recipe change, so old caches are not reused
# Fields of the datamodule's info that define what the classifier learns; anything else (batch size,
# workers, …) must not change the key.
KEY_FIELDS = (
    "name",
    "dataset",
    "root",
    "image_size",
    "domain_names",
    "attr_names",
    "num_domains",
    "num_attrs",
    "view",
    "task",
    "split_seed",
    "fingerprint",
    "version",
)


def default_cache_dir() -> Path:
    """``$FACETRANS_CACHE`` if set, else ``~/.cache/facetrans``."""
    env = os.environ.get("FACETRANS_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "facetrans"


def jsonable(value: Any) -> Any:
    """Plain JSON types, with sequences (tuple, ListConfig, …) as lists and mappings sorted by key."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, Sequence | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, Tensor):
        return value.tolist()
    return str(value)


def key_data(datamodule_info: Mapping[str, Any]) -> dict[str, Any]:
    """The ``KEY_FIELDS`` of the datamodule's info, as plain JSON values."""
    return {k: jsonable(datamodule_info[k]) for k in KEY_FIELDS if k in datamodule_info}


def infer_task(info: Mapping[str, Any]) -> str:
    """``domain`` or ``multilabel``, from the info's task/view hint or the labels it names."""
    hint = str(info.get("task") or info.get("view") or "").lower()
    if "attr" in hint or "multilabel" in hint:
        return "multilabel"
    if info.get("domain_names") or info.get("num_domains"):
        return "domain"
    if info.get("attr_names") or info.get("num_attrs"):
        return "multilabel"
    raise ConfigError(
        "cannot tell the evaluation classifier's task from the datamodule info; pass task='domain' or 'multilabel'."
    )


def cache_key(
    datamodule_info: Mapping[str, Any],
    *,
    split: str = "train",
    arch: str = "small",
    task: str | None = None,
    settings: Mapping[str, Any] | None = None,
) -> str:
    """Stable 16-hex-digit hash of what defines an evaluation classifier.

    Hashes the ``KEY_FIELDS`` present in ``datamodule_info`` (dataset name, image size, domain/attribute
    names, …), the split it learns from, arch, task, the training ``settings`` and ``CACHE_FORMAT``.
    """
    if not (datamodule_info.get("name") or datamodule_info.get("dataset")):
        raise ConfigError("the datamodule info needs a 'name' to key the evaluation classifier cache.")
    task = task or infer_task(datamodule_info)
    payload = {
        "format": CACHE_FORMAT,
        "data": key_data(datamodule_info),
        "split": split,
        "arch": arch,
        "task": task,
        "settings": jsonable(dict(settings or {})),
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """``write(tmp)`` to a temporary file beside ``path``, then move it into place (no half-written file)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_sidecar(sidecar: Path, meta: Mapping[str, Any]) -> None:
    """The JSON sidecar, written atomically."""
    atomic_write(sidecar, lambda tmp: Path(tmp).write_text(json.dumps(meta, indent=2, sort_keys=True)))


def write_state(path: Path, model: nn.Module) -> None:
    """``model``'s state_dict on the CPU, written atomically to ``path`` (its folder is created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cpu_state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_write(path, lambda tmp: torch.save(cpu_state, tmp))
