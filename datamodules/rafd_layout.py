"""RaFD's official layout: a flat folder of ``Rafd{angle}_{model}_{ethnicity}_{gender}_{expression}_{gaze}.jpg``
(e.g. ``Rafd090_28_Caucasian_male_angry_frontal.jpg``), or StarGAN's ``{train,test}/<expression>/*.jpg``.

This module only parses names into records; the datamodule turns records into views."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from suite.errors import DatasetError

EXPRESSIONS = ("angry", "contemptuous", "disgusted", "fearful", "happy", "neutral", "sad", "surprised")
ANGLES = ("000", "045", "090", "135", "180")
GAZES = ("frontal", "left", "right")
NAME = re.compile(
    r"^Rafd(?P<angle>\d{3})_(?P<model>\d{2})_(?P<ethnicity>[A-Za-z]+)_(?P<gender>male|female)_"
    r"(?P<expression>[a-z]+)_(?P<gaze>frontal|left|right)\.(?:jpg|jpeg|png)$"
)
LAYOUT = (
    "a flat folder of Rafd{angle}_{model}_{ethnicity}_{gender}_{expression}_{gaze}.jpg files "
    "(e.g. Rafd090_28_Caucasian_male_angry_frontal.jpg) or StarGAN's {train,test}/<expression>/*.jpg"
)


@dataclass(frozen=True)
class RaFDRecord:
    path: Path
    angle: str
    model: int
    ethnicity: str
    gender: str
    expression: str
    gaze: str
    split: str | None = None  # set only for StarGAN's pre-split layout


def scan(root: str | Path, env_var: str = "RAFD_ROOT") -> list[RaFDRecord]:
    """All RaFD images under ``root`` as records; one clear DatasetError when the root or layout is wrong."""
    if not root:
        raise DatasetError(
            f"RaFD's location is not set (pass data.root=<dir> or set the {env_var} environment variable); "
            f"expected {LAYOUT}."
        )
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(
            f"RaFD was not found at {root} (set data.root=<dir> or {env_var}); expected {LAYOUT}."
        )
    records = []
    for path in sorted(root.iterdir()):
        m = NAME.match(path.name)
        if m:
            records.append(
                RaFDRecord(path, m["angle"], int(m["model"]), m["ethnicity"], m["gender"], m["expression"], m["gaze"])
            )
    if not records:
        for split in ("train", "test"):
            for expr_dir in sorted((root / split).glob("*")) if (root / split).is_dir() else []:
                for path in sorted(expr_dir.glob("*.jp*g")) + sorted(expr_dir.glob("*.png")):
                    m = NAME.match(path.name)
                    if m:
                        records.append(RaFDRecord(path, m["angle"], int(m["model"]), m["ethnicity"], m["gender"],
                                                  m["expression"], m["gaze"], split))
                    else:
                        records.append(RaFDRecord(path, "090", -1, "", "", expr_dir.name, "frontal", split))
    if not records:
        raise DatasetError(f"no RaFD images in {root}; expected {LAYOUT}.")
    unknown = sorted({r.expression for r in records} - set(EXPRESSIONS))
    if unknown:
        raise DatasetError(f"RaFD at {root} has unknown expression names {unknown}; valid: {', '.join(EXPRESSIONS)}.")
    return records
