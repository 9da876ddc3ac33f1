"""Translate a user's own images with a checkpoint (the helpers behind ``translate.py``).

Images get the training preprocessing: for real datasets the datamodule's ``Preprocess`` (crop + resize, no
flip) rebuilt from the checkpoint's stored config; when that dataset is not on this machine (or for the
embedded data) the largest centred square resized to ``info["image_size"]``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from suite.errors import ConfigError, SuiteError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


class ImageReadError(SuiteError):
    """An input image cannot be read."""


def load_module(ckpt_path: str | Path, device: str = "cpu") -> tuple[Any, dict]:
    """(module in eval mode, checkpoint) from the checkpoint alone — the training data need not be here."""
    from omegaconf import OmegaConf

    from suite.checkpoints import read_checkpoint
    from suite.training import build_method

    ckpt = read_checkpoint(ckpt_path)
    module = build_method(OmegaConf.create(ckpt["suite"]["config"]), ckpt["suite"]["data_info"])
    module.on_load_checkpoint(ckpt)
    module.load_state_dict(ckpt["state_dict"])
    return module.to(device).eval(), ckpt


def list_images(path: str | Path) -> list[Path]:
    """The image file ``path``, or the images in the folder ``path`` (sorted, recursive)."""
    path = Path(path)
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not found:
            raise ImageReadError(f"the folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)}).")
        return found
    if not path.is_file():
        raise ImageReadError(f"no image or folder at {path}.")
    return [path]


def make_preprocess(run_cfg: Any, info: dict) -> Any:
    """The datamodule's own ``Preprocess`` (flip off) when it has one, else a centred square + resize."""
    from datamodules.records import Preprocess

    size = int(info["image_size"])
    pre = None
    try:
        from suite.training import build_datamodule

        dm = build_datamodule(run_cfg, run_cfg.method.view)
        pre = getattr(dm, "preprocess", None)
    except SuiteError as err:  # the training data is not here: fall back to the plain crop
        log.warning("using a centred square crop: the training data cannot be opened (%s)", err)
    if isinstance(pre, Preprocess):
        import dataclasses

        return dataclasses.replace(pre, flip=False)
    return Preprocess(size, crop="square", flip=False, draft=True)


def load_image(path: Path, preprocess: Any) -> torch.Tensor:
    """1×3×S×S in [-1, 1]; ImageReadError (one sentence) when the file cannot be decoded."""
    try:
        array = preprocess(path)
    except SuiteError as err:
        raise ImageReadError(f"cannot read the image {path}: {err}") from None
    except Exception as exc:  # noqa: BLE001
        raise ImageReadError(f"cannot read the image {path} ({type(exc).__name__}).") from None
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)[None].float() / 127.5 - 1


def parse_target(spec: str | None, info: dict, view: str) -> Any:
    """``--target`` as the method wants it: a domain index (name or number) for domain views, or the
    target attribute vector (1×n) for ``Name=0|1,…`` on the multi-attribute view."""
    if view == "multi_attribute":
        names = list(info.get("attr_names") or [])
        if not spec:
            raise ConfigError(f"--target needs attributes like {names[0]}=1 (valid: {', '.join(names)}).")
        values = {}
        for part in spec.split(","):
            name, _, value = part.partition("=")
            name = name.strip()
            if name not in names:
                raise ConfigError(f"unknown attribute {name!r} in --target; valid attributes: {', '.join(names)}.")
            if value.strip() not in ("0", "1"):
                raise ConfigError(f"--target {name} must be =0 or =1, got {value!r}.")
            values[name] = float(value)
        return values
    names = list(info.get("domain_names") or [])
    if spec is None:
        if len(names) == 2:
            return 1  # the two-domain methods' forward direction
        raise ConfigError(f"--target is needed: one of {', '.join(names)}.")
    if spec in names:
        return names.index(spec)
    if spec.isdigit() and int(spec) < len(names):
        return int(spec)
    raise ConfigError(f"unknown target {spec!r}; valid targets: {', '.join(names)} (or their indices).")


def translate_batch(module: Any, image: torch.Tensor, target: Any, reference: torch.Tensor | None) -> dict:
    view = module.data_info.get("view") if hasattr(module, "data_info") else None
    if reference is not None:
        if view == "multi_attribute":
            return module.translate(image, None, reference=reference)
        return module.translate(image, reference)
    if isinstance(target, dict):  # attribute names → full vector: the source's predicted attributes, edited
        names = list(module.data_info["attr_names"])
        source = module.predict_attributes(image) if hasattr(module, "predict_attributes") else torch.zeros(1, len(names))
        wanted = source.clone()
        for name, value in target.items():
            wanted[:, names.index(name)] = value
        return module.translate(image, {"target_attrs": wanted, "source_attrs": source})
    return module.translate(image, torch.tensor([target], device=image.device))


def save_outputs(out: dict, out_dir: Path, stem: str) -> list[Path]:
    """``<stem>.png`` (the translation) and ``<stem>_<key>.png`` for masks, flows and other image-like outputs."""
    written = []
    for key, value in out.items():
        if not torch.is_tensor(value) or value.dim() != 4:
            continue
        v = value[0].detach().float().cpu()
        if key == "flow" or v.shape[0] == 2:  # a flow field: |flow| as grey
            v = v.norm(dim=0, keepdim=True)
            v = v / v.max().clamp_min(1e-8)
        elif key == "mask" or v.shape[0] == 1:
            v = v.clamp(0, 1)
        else:
            v = (v.clamp(-1, 1) + 1) / 2
        if v.shape[0] not in (1, 3):
            continue
        array = (v.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        path = out_dir / (f"{stem}.png" if key == "image" else f"{stem}_{key}.png")
        Image.fromarray(array[..., 0] if array.shape[2] == 1 else array).save(path)
        written.append(path)
    return written
