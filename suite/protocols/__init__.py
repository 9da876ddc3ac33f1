"""Papers' tables as evaluation protocols: ``python evaluate.py protocol=<name> ckpt_paths=[…] out_dir=<dir>``
writes ``<out_dir>/<name>.md``, the published figures beside ours in the paper's layout.

A paper adds one module here (``suite/protocols/<paper>.py``) holding its tables as :class:`PaperTable` data and
a :class:`Protocol` per table, and one entry in ``_PAPERS`` below. Shared pieces: :mod:`.base` (the dataclasses),
:mod:`.markdown` (the writer), :mod:`.paired` (PSNR/MSE against paired targets, checkpoint facts),
:mod:`.params` (parameter counts of nets built from ``conf/method``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from suite.errors import ConfigError
from suite.protocols import aggan, bridge, disent, sat, spm
from suite.protocols.base import Column, EvalSettings, OurRows, PaperTable, Protocol
from suite.protocols.markdown import render, table_cells, write

__all__ = ["PROTOCOLS", "Column", "EvalSettings", "OurRows", "PaperTable", "Protocol", "get_protocol", "render",
           "run_protocol"]

_PAPERS = (aggan, bridge, disent, sat, spm)  # each paper module's PROTOCOLS
PROTOCOLS: dict[str, Protocol] = {p.name: p for module in _PAPERS for p in module.PROTOCOLS}


def get_protocol(name: str) -> Protocol:
    """The protocol called ``name``; ConfigError (one sentence naming the valid ones) otherwise."""
    if name not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {name!r}; the protocols are {', '.join(sorted(PROTOCOLS))} "
                          "(or protocol=null for each checkpoint's metrics).")
    return PROTOCOLS[name]


def run_protocol(name: str, ckpt_paths: Sequence[str | os.PathLike], out_dir: str | os.PathLike,
                 settings: EvalSettings | None = None, wandb_cfg: Mapping[str, Any] | None = None) -> Path:
    """Compute protocol ``name`` on ``ckpt_paths``, write ``<out_dir>/<name>.md`` and return its path; the table
    is also logged to W&B as ``eval/<name>`` when ``wandb_cfg`` asks for it (:func:`suite.comparison.log_table`)."""
    from suite.comparison import log_table

    protocol = get_protocol(name)
    paths = [Path(p) for p in ckpt_paths]
    if protocol.needs_checkpoints and not paths:
        raise ConfigError(f"protocol={name} scores checkpoints of {', '.join(protocol.methods)}; pass "
                          "ckpt_paths=[a.ckpt,b.ckpt] (or ckpt_path=<run>/checkpoints/last.ckpt).")
    ours = protocol.compute(paths, settings or EvalSettings())
    out = write(out_dir, protocol, ours, [str(p) for p in paths])
    header, rows = table_cells(protocol, ours)
    log_table(f"eval/{name}", header, rows, wandb_cfg, out_dir, out)
    return out
