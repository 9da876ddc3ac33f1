"""Multi-PIE's multiview tree: file names, cameras and the expression of each (session, recording).

Layout (``root`` = the folder holding ``data/``, or ``data/`` itself)::

    data/session0{1-4}/multiview/{subject:03d}/{recording:02d}/{camera}/
        {subject:03d}_{session:02d}_{recording:02d}_{camera without "_"}_{illumination:02d}.png
    e.g. data/session02/multiview/108/01/05_1/108_02_01_051_17.png

Cameras ``24_0 01_0 20_0 19_0 04_1 19_1 05_0 05_1 14_0 08_1 13_0 08_0 09_0 12_0 11_0``; ``05_1`` is frontal.
Illuminations 00–19 (flash numbers; 00 is no flash). The expression is fixed by (session, recording):
neutral (1,1) (2,1) (3,1) (4,1) (4,2); smile (1,2) (3,2); surprise (2,2); squint (2,3); disgust (3,3);
scream (4,3). This module only reads names into records; :mod:`datamodules.multipie` makes splits and views.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from suite.errors import DatasetError

CAMERAS = ("24_0", "01_0", "20_0", "19_0", "04_1", "19_1", "05_0", "05_1", "14_0", "08_1", "13_0", "08_0", "09_0", "12_0", "11_0")
FRONTAL = "05_1"
EXPRESSION_OF = {
    (1, 1): "neutral", (2, 1): "neutral", (3, 1): "neutral", (4, 1): "neutral", (4, 2): "neutral",
    (1, 2): "smile", (3, 2): "smile",
    (2, 2): "surprise",
    (2, 3): "squint",
    (3, 3): "disgust",
    (4, 3): "scream",
}
EXPRESSIONS = ("neutral", "smile", "surprise", "squint", "disgust", "scream")
NAME = re.compile(
    r"^(?P<subject>\d{3})_(?P<session>\d{2})_(?P<recording>\d{2})_(?P<camera>\d{3})_(?P<illumination>\d{2})\.png$"
)
SESSION = re.compile(r"^session0[1-4]$")
LAYOUT = (
    "Multi-PIE's data/session0{1-4}/multiview/{subject}/{recording}/{camera}/"
    "{subject}_{session}_{recording}_{camera without _}_{illumination}.png "
    "(e.g. data/session02/multiview/108/01/05_1/108_02_01_051_17.png)"
)


@dataclass(frozen=True)
class MultiPIERecord:
    path: Path
    subject: int
    session: int
    recording: int
    camera: str
    illumination: int
    expression: str


def find_data(root: Path) -> Path:
    """The ``data`` folder (holding session01 …) under ``root``."""
    for data in (root / "data", root):
        if data.is_dir() and any(SESSION.match(p.name) and (p / "multiview").is_dir() for p in data.iterdir()):
            return data
    raise DatasetError(
        f"data=multipie: no Multi-PIE session folders (data/session01/multiview/ …) under {root}; expected {LAYOUT}."
    )


def _dirs(path: Path) -> list[os.DirEntry]:
    with os.scandir(path) as it:
        return sorted((e for e in it if e.is_dir()), key=lambda e: e.name)


def scan(root: Path, cameras: tuple[str, ...]) -> list[MultiPIERecord]:
    """Every image of the given cameras under ``root``; a DatasetError for a file whose name contradicts its
    folders, or for none found."""
    data = find_data(root)
    records = []
    for session_dir in _dirs(data):
        if not SESSION.match(session_dir.name) or not os.path.isdir(os.path.join(session_dir.path, "multiview")):
            continue
        session = int(session_dir.name[-2:])
        for subject_dir in _dirs(Path(session_dir.path) / "multiview"):
            for recording_dir in _dirs(Path(subject_dir.path)):
                for camera in cameras:
                    folder = Path(recording_dir.path) / camera
                    if not folder.is_dir():
                        continue
                    for name in sorted(os.listdir(folder)):
                        if not name.lower().endswith(".png"):
                            continue
                        path = folder / name
                        m = NAME.match(name)
                        expected = (subject_dir.name, f"{session:02d}", recording_dir.name, camera.replace("_", ""))
                        if not m or (m["subject"], m["session"], m["recording"], m["camera"]) != expected:
                            raise DatasetError(
                                f"data=multipie: the file name {path} contradicts its folders; expected "
                                f"{'_'.join(expected)}_<illumination>.png in {LAYOUT}."
                            )
                        key = (session, int(m["recording"]))
                        if key not in EXPRESSION_OF:
                            raise DatasetError(
                                f"data=multipie: {path} is recording {key[1]:02d} of session {session:02d}, which Multi-PIE "
                                f"does not have; the (session, recording) pairs are {sorted(EXPRESSION_OF)}."
                            )
                        records.append(
                            MultiPIERecord(path, int(m["subject"]), session, key[1], camera, int(m["illumination"]),
                                           EXPRESSION_OF[key])
                        )
    if not records:
        raise DatasetError(f"data=multipie: no images of the cameras {', '.join(cameras)} under {data}; expected {LAYOUT}.")
    return records
