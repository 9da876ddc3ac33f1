"""translate.py: a user's own images through a tiny checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import translate
from suite.training import train
from tests.suite.test_training import TINY

AFHQ = Path(__file__).resolve().parents[2].parent / "shared" / "realdata" / "afhq"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    from tests.conftest import compose_config

    run_dir = tmp_path_factory.mktemp("run")
    cfg = compose_config([f"run_dir={run_dir}", "logger=none", "trainer=cpu", "trainer.enable_progress_bar=false", "scale=synth",
                          *TINY, "trainer.max_steps=2"])
    return train(cfg)["checkpoint"]


def test_generated_image_file(ckpt, tmp_path):
    src = tmp_path / "face.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (50, 70, 3), dtype=np.uint8)).save(src)
    assert translate.main(["--ckpt", str(ckpt), "--input", str(src), "--target", "happy", "--out", str(tmp_path / "o")]) == 0
    out = Image.open(tmp_path / "o" / "face.png")
    assert out.size == (32, 32) and out.mode == "RGB"
    assert Image.open(tmp_path / "o" / "face_mask.png").size == (32, 32)  # aggan's attention mask


def test_afhq_folder(ckpt, tmp_path):
    if not AFHQ.is_dir():
        pytest.skip(f"no AFHQ sample at {AFHQ}")
    folder = next(p.parent for p in sorted(AFHQ.rglob("*")) if p.suffix.lower() in (".jpg", ".png"))
    assert translate.main(["--ckpt", str(ckpt), "--input", str(folder), "--target", "1", "--out", str(tmp_path / "o")]) == 0
    written = sorted((tmp_path / "o").glob("*.png"))
    assert written and all(Image.open(p).size == (32, 32) for p in written)


def test_unknown_target_lists_valid_ones(ckpt, tmp_path, capsys):
    src = tmp_path / "x.png"
    Image.new("RGB", (40, 40)).save(src)
    assert translate.main(["--ckpt", str(ckpt), "--input", str(src), "--target", "angry", "--out", str(tmp_path)]) == 2
    assert "neutral, happy" in capsys.readouterr().err


def test_unreadable_image_and_bad_checkpoint(ckpt, tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    assert translate.main(["--ckpt", str(ckpt), "--input", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "bad.jpg" in capsys.readouterr().err
    assert translate.main(["--ckpt", str(tmp_path / "none.ckpt"), "--input", str(bad), "--out", str(tmp_path)]) == 2
    assert "no checkpoint" in capsys.readouterr().err


@pytest.fixture(scope="module")
def bridge_ckpt(tmp_path_factory):
    from tests.conftest import compose_config
    from tests.methods import RUN_OVERRIDES as METHODS

    run_dir = tmp_path_factory.mktemp("bridge")
    cfg = compose_config([f"run_dir={run_dir}", "logger=none", "trainer=cpu", "trainer.enable_progress_bar=false", "scale=synth",
                          *METHODS["bridge"], "trainer.max_steps=2"])
    return train(cfg)["checkpoint"]


def _face(path: Path, seed: int) -> Path:
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (48, 40, 3), dtype=np.uint8)).save(path)
    return path


def test_attribute_target_on_the_bridge(bridge_ckpt, tmp_path, capsys):
    src = _face(tmp_path / "face.png", 1)
    out = tmp_path / "o"
    assert translate.main(["--ckpt", str(bridge_ckpt), "--input", str(src), "--target", "Smiling=1,Bangs=0", "--out", str(out)]) == 0
    assert Image.open(out / "face.png").size == (32, 32)
    assert translate.main(["--ckpt", str(bridge_ckpt), "--input", str(src), "--target", "Smiling=2", "--out", str(out)]) == 2
    assert "=0 or =1" in capsys.readouterr().err
    assert translate.main(["--ckpt", str(bridge_ckpt), "--input", str(src), "--target", "Beard=1", "--out", str(out)]) == 2
    assert "Smiling, Eyeglasses, Bangs, Blond_Hair" in capsys.readouterr().err


def test_reference_image_on_the_bridge(bridge_ckpt, tmp_path):
    src, ref = _face(tmp_path / "face.png", 1), _face(tmp_path / "ref.png", 2)
    out = tmp_path / "o"
    assert translate.main(["--ckpt", str(bridge_ckpt), "--input", str(src), "--reference", str(ref), "--out", str(out)]) == 0
    by_reference = np.asarray(Image.open(out / "face.png"))
    assert by_reference.shape == (32, 32, 3)
    assert translate.main(["--ckpt", str(bridge_ckpt), "--input", str(src), "--target", "Smiling=1", "--out", str(tmp_path / "l")]) == 0
    assert not np.array_equal(by_reference, np.asarray(Image.open(tmp_path / "l" / "face.png")))  # the reference was used
