"""The shared writer: a protocol's table in the paper's layout, the published figure and ours side by side.

Each column of the paper becomes two, ``<header> (paper)`` and ``<header> (ours)``; columns only we have (a
dataset the paper did not use) follow as ``<header> (ours)``; rows keep the paper's order,
rows only we have (an ablation the paper did not run, a label we could not map) follow. Under the table: a line
for every paper column we do not compute and why, then the protocol's notes.
"""

from __future__ import annotations

import os
from pathlib import Path

from suite.protocols.base import Cell, Column, OurRows, Protocol
from suite.stats import mean_std

MISSING = "—"


def published_cell(value: Cell | None, column: Column) -> str:
    if value is None:
        return MISSING
    return value if isinstance(value, str) else format(value, column.fmt)


def our_cell(values: list[float] | str | None, column: Column) -> str:
    """One value as the column formats it; several (seeds, repeated checkpoints) as ``mean ± std (n=k)``."""
    if values is None or (isinstance(values, list) and not values):
        return MISSING
    if isinstance(values, str):
        return values
    summary = mean_std(values)
    if len(values) == 1 or summary is None:
        return format(values[0], column.fmt)
    mean, std, _n = summary
    return f"{format(mean, column.fmt)} ± {format(std or 0.0, column.fmt)} (n={len(values)})"


def table_cells(protocol: Protocol, ours: OurRows) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the side-by-side table (strings, as printed)."""
    paper = protocol.paper
    extra = [c for c in ours.columns if c.key not in {p.key for p in paper.columns}]
    header = [paper.row_header]
    for column in paper.columns:
        header += [f"{column.header} (paper)", f"{column.header} (ours)"]
    header += [f"{column.header} (ours)" for column in extra]
    names = [*paper.rows, *[r for r in ours.rows if r not in paper.rows]]
    rows = []
    for name in names:
        cells = [name]
        for column in paper.columns:
            cells.append(published_cell(paper.rows.get(name, {}).get(column.key), column))
            cells.append(our_cell(ours.rows.get(name, {}).get(column.key), column))
        cells += [our_cell(ours.rows.get(name, {}).get(column.key), column) for column in extra]
        rows.append(cells)
    return header, rows


def render(protocol: Protocol, ours: OurRows, checkpoints: list[str] | None = None) -> str:
    header, rows = table_cells(protocol, ours)
    lines = [f"# {protocol.name}: {protocol.title}", "",
             f"Published figures: {protocol.paper.source}. Ours: computed by this suite"
             + (f" from {len(checkpoints)} checkpoint(s) (listed below)." if checkpoints else "."), "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    if protocol.paper.not_computed:
        lines += ["", "Not computed:"]
        lines += [f"- {column}: {why}" for column, why in protocol.paper.not_computed.items()]
    if ours.notes:
        lines += ["", "Notes:"]
        lines += [f"- {note}" for note in ours.notes]
    if checkpoints:
        lines += ["", "Checkpoints:"]
        lines += [f"- {path}" for path in checkpoints]
    return "\n".join(lines) + "\n"


def write(out_dir: str | os.PathLike, protocol: Protocol, ours: OurRows, checkpoints: list[str] | None = None) -> Path:
    """Write ``<out_dir>/<protocol>.md`` (atomically); returns its path."""
    out = Path(out_dir) / f"{protocol.name}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(render(protocol, ours, checkpoints))
    os.replace(tmp, out)
    return out
