"""Finding a real dataset on disk: its root folder and its annotation files, with one-sentence errors.

A missing root, a missing annotation file or a malformed line is a :class:`suite.errors.DatasetError` naming the
path (and the line) and the layout the reader expected.
"""

from __future__ import annotations

import os
from pathlib import Path

from datamodules.images import reason
from suite.errors import DatasetError


def resolve_root(dataset: str, root: str | os.PathLike | None, env_var: str | None, layout: str) -> Path:
    """The dataset's folder: ``root``, else the ``env_var`` environment variable. A DatasetError naming the path
    tried and the layout expected when it is unset or not a folder."""
    where = f"data.root=<dir> or the {env_var} environment variable" if env_var else "data.root=<dir>"
    if not root and env_var:
        root = os.environ.get(env_var) or None
    if not root:
        raise DatasetError(f"data={dataset}: the dataset's location is not set (pass {where}); expected {layout}.")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DatasetError(f"data={dataset}: no dataset folder at {path} (set {where}); expected {layout}.")
    return path


def read_annotation(dataset: str, path: Path, layout: str) -> list[str]:
    """The lines of an annotation file; a DatasetError naming it (and the layout) when it is missing or
    unreadable."""
    if not path.is_file():
        raise DatasetError(f"data={dataset}: the annotation file {path} is missing; expected {layout}.")
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise DatasetError(f"data={dataset}: cannot read the annotation file {path} ({reason(exc)}).") from exc


def malformed(dataset: str, path: Path, lineno: int, expected: str, line: str) -> DatasetError:
    """The error for line ``lineno`` (1-based) of ``path`` not matching ``expected``."""
    shown = " ".join(line.split())
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return DatasetError(f"data={dataset}: line {lineno} of {path} is malformed: expected {expected}, got {shown!r}.")
