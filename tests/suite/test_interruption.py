"""Interruption: SIGTERM/SIGINT save a final checkpoint and exit 0; a save killed half-way never corrupts
last.ckpt; resuming from a truncated checkpoint stops with one sentence."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from suite.checkpoints import read_checkpoint
from suite.training import train

ROOT = Path(__file__).resolve().parents[2]
TINY = ["method.generator.ngf=8", "method.generator.n_blocks=1", "method.discriminator.ndf=8", "data.image_size=32",
        "data.batch_size=2", "data.train_size=8", "data.test_size=4", "data.val_size=4", "method.sample_every=0",
        "method.num_samples=2", "scale=synth"]
ENV = {"WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "HOME": str(Path.home())}


class KilledDuringSave(Exception):
    pass


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_saves_a_final_checkpoint_and_exits_cleanly(tmp_path, signum):
    run_dir = tmp_path / "run"
    last = run_dir / "checkpoints" / "last.ckpt"
    proc = subprocess.Popen([sys.executable, "train.py", "logger=none", "trainer=cpu", "trainer.enable_progress_bar=false",
                             *TINY, "trainer.max_steps=100000", "checkpoint_every=2", f"hydra.run.dir={run_dir}"],
                            cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not last.exists():
            assert proc.poll() is None and time.time() < deadline, "no checkpoint appeared"
            time.sleep(0.2)
        first = read_checkpoint(last)["suite"]["iteration"]
        time.sleep(1.0)  # let it train past the first checkpoint
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    assert "stopped by signal" in out
    final = read_checkpoint(last)["suite"]["iteration"]
    assert final > first  # a later iteration, saved on the way out
    assert not list(last.parent.glob(".last.ckpt.tmp*"))


def test_killed_save_keeps_previous_checkpoint_and_cleans_up(make_cfg, tmp_path, monkeypatch):
    first = train(make_cfg(*TINY, "trainer.max_steps=2", "checkpoint_every=2", run_dir=tmp_path / "r"))
    good = first["checkpoint"].read_bytes()
    from lightning_fabric.plugins.io import torch_io

    real_save = torch_io._atomic_save

    def dies_half_way(checkpoint, filepath):
        Path(filepath).write_bytes(b"PK\x03\x04 partial")  # what a process killed mid-write leaves behind
        raise KilledDuringSave("killed during save")

    monkeypatch.setattr(torch_io, "_atomic_save", dies_half_way)
    with pytest.raises(KilledDuringSave):
        train(make_cfg(*TINY, "trainer.max_steps=4", "checkpoint_every=2", f"ckpt_path={first['checkpoint']}",
                       run_dir=tmp_path / "r"))
    assert first["checkpoint"].read_bytes() == good
    assert read_checkpoint(first["checkpoint"])["suite"]["iteration"] == 2
    assert not list(first["checkpoint"].parent.glob(".last.ckpt.tmp*"))

    # a temp file from a kill -9 (no chance to clean up) is removed by the next save
    stale = first["checkpoint"].parent / ".last.ckpt.tmp99999"
    stale.write_bytes(b"partial")
    monkeypatch.setattr(torch_io, "_atomic_save", real_save)
    again = train(make_cfg(*TINY, "trainer.max_steps=4", "checkpoint_every=2", f"ckpt_path={first['checkpoint']}",
                           run_dir=tmp_path / "r"))
    assert read_checkpoint(again["checkpoint"])["suite"]["iteration"] == 4
    assert not stale.exists()


def test_resume_from_truncated_checkpoint_is_one_sentence(make_cfg, tmp_path):
    run = train(make_cfg(*TINY, "trainer.max_steps=1", run_dir=tmp_path / "r"))
    data = run["checkpoint"].read_bytes()
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(data[: len(data) // 2])
    res = subprocess.run([sys.executable, "train.py", "logger=none", "trainer=cpu", *TINY, "trainer.max_steps=2",
                          f"ckpt_path={truncated}", f"hydra.run.dir={tmp_path / 'b'}"],
                         cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=240)
    assert res.returncode == 2
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "truncated, corrupt" in err[0], res.stderr[-2000:]
    assert "Traceback" not in res.stderr


def test_no_credential_reaches_checkpoint_or_saved_hydra_config(tmp_path):
    """Secrets passed on the command line (config key or hydra.job.env_set) end up neither in the checkpoint nor
    in the files Hydra writes to <run>/.hydra/."""
    run_dir = tmp_path / "run"
    secret = "SECRET-abc123"
    res = subprocess.run([sys.executable, "train.py", "logger=none", "trainer=cpu", *TINY, "trainer.max_steps=1",
                          f"+logger_api_key={secret}", f"+auth.token={secret}", f"+db.password={secret}",
                          f"+hydra.job.env_set.WANDB_API_KEY={secret}", f"hydra.run.dir={run_dir}"],
                         cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-2000:]
    ckpt = read_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert secret not in str(ckpt["suite"]["config"]) and secret not in str(ckpt.get("hyper_parameters"))
    assert secret.encode() not in (run_dir / "checkpoints" / "last.ckpt").read_bytes()
    saved = list((run_dir / ".hydra").glob("*.yaml"))
    assert {p.name for p in saved} >= {"config.yaml", "hydra.yaml", "overrides.yaml"}
    for path in saved:
        assert secret not in path.read_text(), path.name


def test_forked_worker_dies_on_sigterm_instead_of_swallowing_it(tmp_path):
    """DataLoader workers are forked after on_train_start and inherit the handler; the loader ends them with
    SIGTERM, so in a child the handler must let the signal kill it (and leave the parent's run alone)."""
    import os

    from suite.callbacks import IterationCheckpoint

    callback = IterationCheckpoint(tmp_path)
    callback.on_train_start(None, None)
    try:
        pid = os.fork()
        if pid == 0:  # the "worker"
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
            os._exit(3)  # reached only if the signal was swallowed
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM
        assert callback.stop_signal is None
    finally:
        callback.on_exception(None, None, None)
