"""One table from several ``python -m suite.bench`` runs (``scripts/gpu_bench.sh``): each run is one setting
(fp32, TF32, bf16, compile …) written to ``<dir>/<setting>.json``; this merges their rows into
``<out>.json`` and ``<out>.md`` — a row per (setting, method, batch) with images/s, MFU and peak memory — and
lists the settings that did not run or were cut by the time limit, so a partial run still reports what it has.

    python -m suite.bench_merge <dir> --settings fp32 tf32 bf16 … --out <dir>/gpu_bench [--skipped name …]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from suite.bench import COLUMNS as BENCH_COLUMNS
from suite.bench import table

# the bench's own columns (title, key, format), in this order, after the setting
SHOWN = ("method", "image_size", "batch_size", "lightning_images_per_s", "lightning_s_per_iter", "warmup_s",
         "achieved_tflops", "mfu", "gpu_max_allocated_mib", "error")
COLUMNS = [("setting", "setting", "{}"), *sorted((c for c in BENCH_COLUMNS if c[1] in SHOWN), key=lambda c: SHOWN.index(c[1]))]


def merge(directory: Path, settings: list[str], skipped: list[str] = ()) -> dict[str, Any]:
    """The rows of ``<directory>/<setting>.json`` for each setting, in order, tagged with the setting; MFU from
    FLOP per iteration and the run's peak where the run could not (``--skip-floor`` rows carry both)."""
    rows: list[dict[str, Any]] = []
    status: dict[str, str] = {}
    header: dict[str, Any] = {}
    for setting in settings:
        path = directory / f"{setting}.json"
        if setting in skipped:
            status[setting] = "skipped: not enough time left before the limit"
            continue
        if not path.exists():
            status[setting] = "no result (cut by its time limit before the first method finished, or failed)"
            continue
        run = json.loads(path.read_text())
        header = header or {k: run.get(k) for k in ("device", "torch", "peak_tflops", "warmup", "iters")}
        done = [r.get("method") for r in run["rows"]]
        status[setting] = f"{len(done)} method(s): {', '.join(done)}"
        for row in run["rows"]:
            row = {"setting": setting, **row}
            flop, seconds, peak = row.get("flop_per_iter"), row.get("lightning_s_per_iter"), run.get("peak_tflops")
            if flop and seconds and "achieved_tflops" not in row:
                row["achieved_tflops"] = flop / seconds / 1e12
            if peak and row.get("achieved_tflops") is not None and "mfu" not in row:
                row["mfu"] = row["achieved_tflops"] / peak
            rows.append(row)
    return {**header, "settings": status, "rows": rows}


def markdown(merged: dict[str, Any], title: str) -> str:
    lines = [f"# {title}", "", f"device: {merged.get('device')}; torch {merged.get('torch')}; peak "
             f"{merged.get('peak_tflops')} TFLOP/s (bf16 dense); warm-up {merged.get('warmup')}, measured "
             f"{merged.get('iters')} iterations per method.", "", "Settings:", ""]
    lines += [f"- `{name}`: {what}" for name, what in merged["settings"].items()]
    lines += ["", *table(merged["rows"], COLUMNS)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m suite.bench_merge", description=__doc__.split("\n\n")[0])
    p.add_argument("directory", type=Path)
    p.add_argument("--settings", nargs="+", required=True)
    p.add_argument("--skipped", nargs="*", default=[])
    p.add_argument("--out", type=Path, required=True, help="writes <out>.json and <out>.md")
    p.add_argument("--title", default="GPU benchmark (scripts/gpu_bench.sh)")
    args = p.parse_args(argv)
    merged = merge(args.directory, args.settings, args.skipped)
    args.out.with_suffix(".json").write_text(json.dumps(merged, indent=2))
    text = markdown(merged, args.title)
    args.out.with_suffix(".md").write_text(text)
    print(text)
    return merged


if __name__ == "__main__":
    main()
