"""One comparison table over several evaluated checkpoints (the papers' tables: a row per method/ablation).

Each evaluation appends its metrics as one JSON row file under ``table_dir`` (``rows/<hash>.json``, keyed by
the checkpoint path, so re-evaluating a checkpoint replaces its row) and then regenerates
``<table_dir>/comparison.md`` from every row there. Hydra multirun jobs (``evaluate.py -m
ckpt_path=a.ckpt,b.ckpt``) each add their row, so the last job leaves the full table; ``ckpt_paths=[a,b]``
does the same in one process.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

log = logging.getLogger(__name__)

CONF_METHOD_DIR = Path(__file__).resolve().parents[1] / "conf" / "method"
# short names of the ablation switches the papers' tables use; other switches appear under their own names
FLAG_NAMES = {"attention_generator": "AG", "attention_discriminator": "AD"}
# columns shown in the table (the rest stay in metrics.json): means only, not /std, /n … and no bookkeeping
HIDDEN_COLUMNS = ("num_images",)


def row_label(config: dict[str, Any], label: str | None = None) -> str:
    """``label`` if given, else the method name plus its switched ablation flags, e.g. ``aggan −AD``.

    A flag is a top-level boolean of the method config that differs from ``conf/method/<name>.yaml``:
    ``−X`` for a switch turned off, ``+X`` for one turned on."""
    if label:
        return str(label)
    method = dict(config.get("method") or {})
    name = str(method.get("name") or method.get("_target_", "run").rsplit(".", 1)[-1])
    defaults: dict[str, Any] = {}
    path = CONF_METHOD_DIR / f"{name}.yaml"
    if path.is_file():
        try:
            defaults = OmegaConf.to_container(OmegaConf.load(path), resolve=False)  # type: ignore[assignment]
        except Exception:  # noqa: BLE001  (a label is cosmetic; never fail an evaluation over it)
            defaults = {}
    flags = []
    for key, value in method.items():
        default = defaults.get(key)
        if isinstance(value, bool) and isinstance(default, bool) and value != default:
            flags.append(("+" if value else "−") + FLAG_NAMES.get(key, key))
    return " ".join([name, *flags])


def add_row(table_dir: str | os.PathLike, ckpt_path: str | os.PathLike, label: str,
            metrics: dict[str, float]) -> Path:
    """Write (or replace) the row of ``ckpt_path`` and regenerate ``comparison.md``; returns its path."""
    rows_dir = Path(table_dir) / "rows"
    rows_dir.mkdir(parents=True, exist_ok=True)
    ckpt = str(Path(ckpt_path).resolve())
    key = hashlib.sha256(ckpt.encode()).hexdigest()[:16]
    row = {"label": label, "ckpt_path": ckpt,
           "metrics": {k: (v if isinstance(v, int | float) and math.isfinite(v) else str(v)) for k, v in metrics.items()}}
    tmp = rows_dir / f".{key}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(row, indent=2, sort_keys=True))
    os.replace(tmp, rows_dir / f"{key}.json")
    return write_table(table_dir)


def read_rows(table_dir: str | os.PathLike) -> list[dict[str, Any]]:
    rows = []
    for path in sorted((Path(table_dir) / "rows").glob("*.json")):
        try:
            rows.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            log.warning("skipping unreadable table row %s", path)
    return sorted(rows, key=lambda r: (r["label"], r["ckpt_path"]))


def comparison_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: a row per checkpoint, a column per metric mean (labels made unique with the run folder)."""
    from suite.evaluation import metrics_table

    table: dict[str, dict[str, float]] = {}
    for row in rows:
        label = row["label"]
        if label in table:
            label = f"{label} ({Path(row['ckpt_path']).parent.parent.name})"
        while label in table:
            label += "'"
        table[label] = {
            k: float(v) for k, v in row["metrics"].items() if "/" not in k and k not in HIDDEN_COLUMNS
        }
    return metrics_table(table)


def write_table(table_dir: str | os.PathLike) -> Path:
    """Regenerate ``<table_dir>/comparison.md`` from all rows; logs it to W&B when a run is active."""
    rows = read_rows(table_dir)
    text = comparison_table(rows)
    out = Path(table_dir) / "comparison.md"
    tmp = out.with_name(f".comparison.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, out)
    _log_to_wandb(rows)
    return out


def _log_to_wandb(rows: list[dict[str, Any]]) -> None:
    """Only into an already active W&B run: never start one (and so never touch the network)."""
    import sys

    wandb = sys.modules.get("wandb")  # imported by someone who uses it; importing it here would cost seconds
    if wandb is None or getattr(wandb, "run", None) is None:
        return
    columns = sorted({k for r in rows for k in r["metrics"] if "/" not in k})
    data = [[r["label"], *[_float(r["metrics"].get(c)) for c in columns]] for r in rows]
    wandb.run.log({"eval/comparison": wandb.Table(columns=["run", *columns], data=data)})


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
