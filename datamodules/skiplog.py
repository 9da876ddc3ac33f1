"""Unreadable images skipped with ``data.on_bad_image=skip``: logged across loader processes, reported once.

Never a silent drop: each skipped file is warned about with the running count when it is met, and the
datamodule reports the total at teardown (:func:`report_skipped`).
"""

from __future__ import annotations

import os
import tempfile
import warnings
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset


class SkipLog:
    """Files skipped as unreadable, shared by the main process and the loader's worker processes through an
    append-only file (each line one path), so the count survives the workers. Removed with the object in
    the process that created it."""

    def __init__(self) -> None:
        fd, name = tempfile.mkstemp(prefix="facetrans-skipped-", suffix=".txt")
        os.close(fd)
        self.path = name
        weakref.finalize(self, _remove_if_owner, name, os.getpid())

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path = state["path"]

    def add(self, path: Path) -> int:
        """Log ``path``; the number of distinct files logged so far."""
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(f"{path}\n")
        return len(self.files())

    def files(self) -> list[str]:
        """The distinct files logged so far, sorted."""
        try:
            with open(self.path, encoding="utf-8") as f:
                return sorted({line.rstrip("\n") for line in f if line.strip()})
        except FileNotFoundError:
            return []


def _remove_if_owner(path: str, pid: int) -> None:
    if os.getpid() == pid:
        try:
            os.remove(path)
        except OSError:
            pass


def report_skipped(name: str, datasets: Sequence[Dataset]) -> list[str]:
    """Warn once with the number of files the ``datasets`` skipped (``on_bad_image=skip``); the files."""
    files = sorted({f for ds in datasets for f in getattr(ds, "skipped_files", list)()})
    if files:
        shown = ", ".join(files[:3]) + (" …" if len(files) > 3 else "")
        warnings.warn(
            f"data={name}: skipped {len(files)} unreadable image file(s) (data.on_bad_image=skip): {shown}",
            stacklevel=2,
        )
    return files
