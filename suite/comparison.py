"""One comparison table over several evaluated checkpoints (the papers' tables: a row per method/ablation).

Each evaluation appends its metrics as one JSON row file under ``table_dir`` (``rows/<hash>.json``, keyed by
the checkpoint path, so re-evaluating a checkpoint replaces its row) and then regenerates
``<table_dir>/comparison.md`` from every row there (and ``comparison_by_label.md``: the runs of one label —
seeds — as mean ± std). Hydra multirun jobs (``evaluate.py -m
ckpt_path=a.ckpt,b.ckpt``) each add their row, so the last job leaves the full table; ``ckpt_paths=[a,b]``
does the same in one process. :func:`log_comparison` then logs the table to W&B (``evaluate.yaml``'s ``wandb``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from pytorch_lightning.utilities import rank_zero_only

from suite.stats import mean_std

log = logging.getLogger(__name__)

CONF_METHOD_DIR = Path(__file__).resolve().parents[1] / "conf" / "method"
# short names of the ablation switches the papers' tables use; other switches appear under their own names
FLAG_NAMES = {"attention_generator": "AG", "attention_discriminator": "AD", "pixel_loss": "PL", "tv_loss": "AL"}
# columns shown in the table (the rest stay in metrics.json): means only, not /std, /n … and no bookkeeping
HIDDEN_COLUMNS = ("num_images",)
WANDB_KEY = "eval/comparison"  # where the table goes in a W&B run


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


def _table_rows(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """``{label: {column: value}}`` as both tables show them: metric means only, labels made unique with the
    run folder (then primes)."""
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
    return table


def comparison_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: a row per checkpoint, a column per metric mean (labels made unique with the run folder)."""
    from suite.evaluation import metrics_table

    return metrics_table(_table_rows(rows))


def grouped_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: a row per label (seeds and repeated runs of one configuration together), each metric as
    ``mean ± std (n=k)`` (sample std; one run: its value), the ablation tables' form."""
    groups: dict[str, list[dict[str, float]]] = {}
    for row in rows:
        metrics = {k: v for k, v in row["metrics"].items()
                   if "/" not in k and k not in HIDDEN_COLUMNS and isinstance(v, int | float)}
        groups.setdefault(row["label"], []).append(metrics)
    columns = sorted({k for runs in groups.values() for metrics in runs for k in metrics})
    lines = ["| run | n | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    for label, runs in groups.items():
        cells = [_mean_std([m[c] for m in runs if c in m]) for c in columns]
        lines.append(f"| {label} | {len(runs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _mean_std(values: list[float]) -> str:
    summary = mean_std(values)
    if summary is None:
        return "—"
    mean, std, _n = summary
    return f"{mean:.4f}" if std is None else f"{mean:.4f} ± {std:.4f}"


def write_table(table_dir: str | os.PathLike) -> Path:
    """Regenerate ``<table_dir>/comparison.md`` (a row per checkpoint) and ``comparison_by_label.md`` (a row per
    label: seeds together, mean ± std) from all rows (atomically); returns the first's path."""
    rows = read_rows(table_dir)
    for name, text in (("comparison", comparison_table(rows)), ("comparison_by_label", grouped_table(rows))):
        out = Path(table_dir) / f"{name}.md"
        tmp = out.with_name(f".{name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, out)
    return Path(table_dir) / "comparison.md"


def wandb_table_data(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """Columns and rows of the W&B table: the markdown table's (``run`` first); non-finite numbers as None."""
    table = _table_rows(rows)
    columns = sorted({k for metrics in table.values() for k in metrics})
    data = [[label, *[_finite(metrics.get(c)) for c in columns]] for label, metrics in table.items()]
    return ["run", *columns], data


@rank_zero_only
def log_comparison(table_dir: str | os.PathLike, wandb_cfg: Mapping[str, Any] | None = None) -> bool:
    """Log the comparison table of ``table_dir`` to W&B as a ``wandb.Table`` under ``eval/comparison``
    (see :func:`log_table`; comparison.md never depends on it). Returns True when the table was logged."""
    rows = read_rows(table_dir)
    if not rows:
        return False
    columns, data = wandb_table_data(rows)
    return log_table(WANDB_KEY, columns, data, wandb_cfg, table_dir, Path(table_dir) / "comparison.md")


@rank_zero_only
def log_table(key: str, columns: list[str], data: list[list[Any]], wandb_cfg: Mapping[str, Any] | None,
              default_dir: str | os.PathLike, written: str | os.PathLike) -> bool:
    """Log one table to W&B as a ``wandb.Table`` under ``key`` (e.g. ``eval/comparison``, ``eval/aggan_table1``).

    Into the active W&B run when there is one (an evaluation inside a training run); otherwise, when
    ``wandb_cfg`` is given and its mode is not disabled, into a run of its own (``job_type="evaluate"``), finished afterwards so each job
    of a multirun gets its own. ``wandb_cfg``: ``mode`` (auto | online | offline | disabled, ``WANDB_MODE``
    wins, as for training: :func:`suite.loggers.wandb_mode`), ``save_dir`` (default ``$WANDB_DIR`` or
    ``default_dir``) and any other ``wandb.init`` argument (project, entity, name, group, tags).
    The table file ``written`` never depends on it: a W&B failure is a warning. Returns True when logged."""
    from suite.loggers import wandb_mode, wandb_settings

    active = getattr(sys.modules.get("wandb"), "run", None)  # only someone who uses wandb has imported it
    init_kwargs = {k: v for k, v in dict(wandb_cfg or {}).items() if v is not None}
    mode = wandb_mode(str(init_kwargs.pop("mode", "auto")), option="wandb.mode")
    if active is None and (wandb_cfg is None or mode == "disabled"):
        return False
    try:
        import wandb

        if active is not None:
            active.log({key: wandb.Table(columns=columns, data=data)})
            return True
        # always explicit: wandb reads WANDB_DIR once per process, and a multirun's jobs share the process
        save_dir = init_kwargs.pop("save_dir", None) or os.environ.get("WANDB_DIR") or str(default_dir)
        Path(save_dir).mkdir(parents=True, exist_ok=True)
        init_kwargs["dir"] = save_dir
        run = wandb.init(mode=mode, job_type="evaluate", **init_kwargs, **wandb_settings())
        try:
            run.log({key: wandb.Table(columns=columns, data=data)})
        finally:
            run.finish()
    except Exception as exc:  # noqa: BLE001  (W&B is a mirror of the table file, never a reason to fail)
        log.warning("%s not logged to W&B (%s: %s); it is in %s", key, type(exc).__name__, exc, written)
        return False
    log.info("logged %s (%d rows) to W&B run %s", key, len(data), run.id)
    return True


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
