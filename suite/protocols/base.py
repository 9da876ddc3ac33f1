"""The pieces of an evaluation protocol: a paper's table carried as data, our rows, and the protocol itself.

A protocol reproduces one published table. Its :class:`PaperTable` holds the published figures exactly as
printed (cited by paper and table number) and never mixes with ours; its ``compute`` function turns checkpoints
(or nothing, for tables that need none) into :class:`OurRows`; :mod:`suite.protocols.markdown` lays both out
side by side in the paper's row/column order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

Cell = float | str  # a number, or a figure that is not one number (e.g. Table III's "52.6M × 28")


def parse_rows(text: str) -> list[list[str]]:
    """A published table pasted as text, one row a line, cells separated by ``|`` → rows of stripped cells (blank
    lines skipped). Keeps each paper module's figures readable exactly as printed."""
    return [[cell.strip() for cell in line.split("|")] for line in text.strip().splitlines() if line.strip()]


@dataclass(frozen=True)
class Column:
    """One column of a table: ``key`` (how rows refer to it), ``header`` (as printed), ``fmt`` for numbers."""

    key: str
    header: str
    fmt: str = ".4f"


@dataclass(frozen=True)
class PaperTable:
    """A published table as data.

    source: the citation (paper, table number). row_header: the first column's title (``Model``, ``Component``).
    columns: the columns we can compute, in the paper's order. rows: row name → column key → the published
    value, in the paper's row order. not_computed: column(s) of the paper we leave out → why (one line each).
    """

    source: str
    row_header: str
    columns: tuple[Column, ...]
    rows: dict[str, dict[str, Cell]]
    not_computed: dict[str, str] = field(default_factory=dict)


@dataclass
class OurRows:
    """What a protocol computed: row name → column key → our values (one per checkpoint; several are shown as
    mean ± std), or a preformatted figure. ``columns``: ours-only columns beyond the paper's (e.g. a dataset the
    paper did not use); ``notes``: lines printed under the table (what a checkpoint could not give, and why)."""

    rows: dict[str, dict[str, list[float] | str]] = field(default_factory=dict)
    columns: list[Column] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, row: str, key: str, value: float) -> None:
        cell = self.rows.setdefault(row, {}).setdefault(key, [])
        assert isinstance(cell, list)
        cell.append(float(value))

    def add_column(self, column: Column) -> None:
        if all(c.key != column.key for c in self.columns):
            self.columns.append(column)


@dataclass(frozen=True)
class EvalSettings:
    """The evaluation options a protocol may use (``conf/evaluate.yaml``)."""

    device: str = "auto"
    batch_size: int = 64
    max_images: int | None = None
    split: str = "test"
    precision: str = "32"
    eight_bit: bool = True  # PSNR/MSE on 8-bit levels, as saved images are (see suite.protocols.paired)
    options: dict = field(default_factory=dict)  # evaluate.yaml's classifier, fid and protocol_options (per protocol)


@dataclass(frozen=True)
class Protocol:
    """One paper table as an evaluation protocol.

    name: ``protocol=<name>``; title: the table's caption; paper: the published table; compute: (checkpoint
    paths, settings) → our rows; methods: the methods whose checkpoints it scores (empty: it needs none)."""

    name: str
    title: str
    paper: PaperTable
    compute: Callable[[Sequence[Path], EvalSettings], OurRows]
    methods: tuple[str, ...] = ()

    @property
    def needs_checkpoints(self) -> bool:
        return bool(self.methods)
