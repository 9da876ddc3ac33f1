"""Batches in the datamodules' formats (two-domain, multi-domain, multi-attribute, multi-factor) and the datamodule
``info`` dicts that describe them, for tests that build a method without a datamodule."""

from __future__ import annotations

import torch

EXPRESSIONS = ["neutral", "happy", "surprised", "angry", "sad"]
INFO2 = {"name": "synthfaces", "view": "two_domain", "image_size": 32, "channels": 3,
         "domain_names": ["neutral", "happy"], "num_domains": 2}
INFO5 = {**INFO2, "view": "multi_domain", "domain_names": EXPRESSIONS, "num_domains": 5}
ATTRS = ["Smiling", "Eyeglasses", "Bangs", "Blond_Hair"]
ATTR_INFO = {"name": "synthfaces", "view": "multi_attribute", "image_size": 32, "channels": 3, "attr_names": ATTRS,
             "num_attrs": 4, "split_sizes": {"train": 16, "val": 4, "test": 4}}
FACTOR_SIZES = {"identity": 6, "expression": 5, "gaze": 3, "illumination": 3}
FACTOR_INFO = {"name": "synthfaces", "view": "multi_factor", "image_size": 32, "channels": 3,
               "factor_names": list(FACTOR_SIZES), "factor_sizes": FACTOR_SIZES,
               "factor_values": {"identity": [f"id{i}" for i in range(6)], "expression": EXPRESSIONS,
                                 "gaze": ["left", "front", "right"], "illumination": ["left", "front", "right"]}}


def _images(g: torch.Generator, batch_size: int, size: int) -> torch.Tensor:
    return torch.rand(batch_size, 3, size, size, generator=g) * 2 - 1


def domain_batch(batch_size: int = 2, size: int = 32, num_domains: int = 2, seed: int = 0) -> dict:
    """A batch in the datamodules' format (two_domain when num_domains == 2)."""
    g = torch.Generator().manual_seed(seed)
    image, ref = _images(g, batch_size, size), _images(g, batch_size, size)
    domain = torch.zeros(batch_size, dtype=torch.long)
    target = torch.ones(batch_size, dtype=torch.long)
    if num_domains > 2:
        domain = torch.randint(num_domains, (batch_size,), generator=g)
        target = (domain + 1) % num_domains
    return {"image": image, "ref": ref, "domain": domain, "target": target, "ref_domain": target.clone()}


def attr_batch(batch_size: int = 4, n: int = 4, size: int = 32, seed: int = 0) -> dict:
    """A multi-attribute batch: ``attrs`` in {0, 1} and ``target_attrs`` their flip (the ``ref``'s labels);
    ``index``/``ref_index`` rows of a 16-image training split (ATTR_INFO's)."""
    g = torch.Generator().manual_seed(seed)
    attrs = torch.randint(0, 2, (batch_size, n), generator=g).float()
    index = torch.randperm(16, generator=g)[:batch_size] if batch_size <= 16 else torch.arange(batch_size)
    return {"image": _images(g, batch_size, size), "ref": _images(g, batch_size, size), "attrs": attrs,
            "target_attrs": 1 - attrs, "index": index, "ref_index": index.roll(1)}


def factor_batch(batch_size: int = 4, seed: int = 0, size: int = 32) -> dict:
    """A multi-factor batch: ``factors`` holds one class index per factor of ``FACTOR_SIZES``."""
    g = torch.Generator().manual_seed(seed)
    image, ref = _images(g, batch_size, size), _images(g, batch_size, size)
    factors = {k: torch.randint(v, (batch_size,), generator=g) for k, v in FACTOR_SIZES.items()}
    return {"image": image, "ref": ref, "factors": factors}
