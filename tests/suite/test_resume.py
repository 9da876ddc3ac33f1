"""Exact resume: a run stopped after k iterations and resumed from its checkpoint reaches iteration n with the
same weights (every entry of the state_dict, bit for bit on the CPU) and the same logged losses as a run that
was never interrupted. k and n straddle an epoch boundary so the data position, not only the weights, is tested."""

from __future__ import annotations

import warnings

import pytest
import torch

from lightning_modules.base import GANModule
from suite.training import train
from tests.methods import RUN_OVERRIDES

ATOL = 0.0  # deterministic CPU configuration: bit-identical (the check is torch.allclose(atol=ATOL, rtol=0))
# the smallest nets each method builds, 3 train batches per epoch (one registry: tests/methods.py)
METHODS = RUN_OVERRIDES


@pytest.fixture
def recorder(monkeypatch):
    """Records the logged losses of every iteration and stops the run after ``stop_after`` iterations (an
    interruption: the last checkpoint is what the next run resumes from)."""
    state = {"stop_after": None, "losses": {}}
    real_step = GANModule.training_step

    def step(self, batch, batch_idx):
        real_step(self, batch, batch_idx)
        metrics = self.trainer.callback_metrics
        state["losses"][self.iteration] = {k: v.item() for k, v in metrics.items() if "/loss/" in k}
        if state["stop_after"] == self.iteration:
            self.trainer.should_stop = True

    monkeypatch.setattr(GANModule, "training_step", step)
    return state


def run(make_cfg, overrides, path, *extra):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return train(make_cfg(*overrides, "checkpoint_every=2", *extra, run_dir=path))


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    differ = [k for k in a if not torch.allclose(a[k].float(), b[k].float(), atol=ATOL, rtol=0)]
    assert not differ, f"{len(differ)} of {len(a)} entries differ after resume, e.g. {differ[:3]}"


def assert_resume_matches(make_cfg, tmp_path, recorder, overrides: list[str], k: int, n: int) -> None:
    """Train ``overrides`` n iterations straight, and k + a resume from the k-th checkpoint to n: same weights,
    same logged losses. The contract suite (tests/contract) runs this for every method."""
    overrides = [*overrides, f"trainer.max_steps={n}"]
    full = run(make_cfg, overrides, tmp_path / "full")
    full_losses, recorder["losses"] = recorder["losses"], {}

    recorder["stop_after"] = k
    stopped = run(make_cfg, overrides, tmp_path / "stopped")
    assert stopped["iteration"] == k
    recorder["stop_after"], recorder["losses"] = None, {}
    resumed = run(make_cfg, overrides, tmp_path / "resumed", f"ckpt_path={stopped['checkpoint']}")

    assert resumed["iteration"] == full["iteration"] == n
    assert_same_state(full["module"].state_dict(), resumed["module"].state_dict())
    assert set(recorder["losses"]) == set(range(k + 1, n + 1))
    for it, losses in recorder["losses"].items():
        # callback_metrics keeps every key ever logged: compare what both runs have logged by this iteration
        common = losses.keys() & full_losses[it].keys()
        assert common and all(losses[k] == pytest.approx(full_losses[it][k], abs=ATOL) for k in common), it


# States beyond the seven methods' defaults that must survive a resume: SPM's LR→HR stage (enhancers, two
# discriminators) and a generator EMA.
EXTRA_RESUME_CASES = {
    "spm_hr": [*METHODS["spm"], "method=spm_hr", "method.lr_size=16"],
    "aggan_ema": [*METHODS["aggan"], "method.ema.enabled=true", "method.ema.decay=0.5"],
}


@pytest.mark.parametrize("case", list(EXTRA_RESUME_CASES))
def test_resumed_run_matches_uninterrupted_run(make_cfg, tmp_path, recorder, case):
    assert_resume_matches(make_cfg, tmp_path, recorder, EXTRA_RESUME_CASES[case], k=2, n=5)


def test_resume_from_a_mid_epoch_checkpoint_written_during_training(make_cfg, tmp_path, recorder):
    """The checkpoint written at on_train_batch_end (not at the end of training) resumes exactly too, also when
    it falls on the last batch of an epoch."""
    overrides = [*METHODS["aggan"], "trainer.max_steps=6"]
    full = run(make_cfg, overrides, tmp_path / "full")
    for k in (2, 3):
        recorder["stop_after"] = k
        stopped = run(make_cfg, overrides, tmp_path / f"stopped{k}", f"checkpoint_every={k}")
        recorder["stop_after"] = None
        resumed = run(make_cfg, overrides, tmp_path / f"resumed{k}", f"ckpt_path={stopped['checkpoint']}")
        assert_same_state(full["module"].state_dict(), resumed["module"].state_dict())


def test_checkpoint_holds_rng_states_and_data_position(make_cfg, tmp_path, recorder):
    from suite.checkpoints import read_checkpoint

    recorder["stop_after"] = 2
    stopped = run(make_cfg, [*METHODS["aggan"], "trainer.max_steps=5"], tmp_path / "r")
    ckpt = read_checkpoint(stopped["checkpoint"])
    rng = ckpt["callbacks"]["RngResume"]["rng"][0]
    assert set(rng) == {"torch", "cuda", "numpy", "python"}
    assert ckpt["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [{"epoch": 0, "batches_done": 2, "batch_size": 2}]


def test_checkpoint_of_the_previous_layout_resumes_exactly(make_cfg, tmp_path, recorder):
    """Checkpoints written before RngResume existed (format 1 too) keep every rank's RNG states under
    ``checkpoint["suite"]["rng"]`` and no callback entry: they resume exactly as well. Control: the same checkpoint
    without any RNG state does not (so the comparison sees the restored states)."""
    overrides = [*METHODS["bridge"], "trainer.max_steps=4"]
    full = run(make_cfg, overrides, tmp_path / "full")
    recorder["stop_after"] = 2
    stopped = run(make_cfg, overrides, tmp_path / "stopped")
    recorder["stop_after"] = None
    ckpt = torch.load(stopped["checkpoint"], map_location="cpu", weights_only=False)
    ckpt["suite"]["rng"] = ckpt["callbacks"].pop("RngResume")["rng"]  # the layout the previous code wrote
    old = tmp_path / "old.ckpt"
    torch.save(ckpt, old)
    resumed = run(make_cfg, overrides, tmp_path / "resumed", f"ckpt_path={old}")
    assert_same_state(full["module"].state_dict(), resumed["module"].state_dict())

    del ckpt["suite"]["rng"]
    torch.save(ckpt, old)
    unseeded = run(make_cfg, overrides, tmp_path / "unseeded", f"ckpt_path={old}")
    with pytest.raises(AssertionError, match="differ after resume"):
        assert_same_state(full["module"].state_dict(), unseeded["module"].state_dict())


@pytest.mark.parametrize("name", ["stargan", "bridge"])
def test_a_checkpoint_written_at_an_epoch_end_resumes_exactly(make_cfg, tmp_path, recorder, name):
    """k = 3 of 3 batches per epoch: the resumed run opens a new epoch, whose data iterator draws from the global
    generator before the first batch (WGAN-GP's interpolation weights then see the states after that draw)."""
    assert_resume_matches(make_cfg, tmp_path, recorder, RUN_OVERRIDES[name], k=3, n=5)


def test_resume_from_a_best_checkpoint_matches_uninterrupted_run(make_cfg, tmp_path, recorder):
    """A best-k checkpoint (``best-<metric>-<iteration>.ckpt``, written when a validation ranks among the k best)
    holds the full state, like last.ckpt: resuming from one reaches the uninterrupted run's weights and losses,
    and the resumed run keeps ranking against the k best it inherited."""
    overrides = [*METHODS["aggan"], "trainer.max_steps=6", "val_every=1", "callbacks.checkpoint.save_top_k=6",
                 "callbacks.validation.classifier.enabled=false", "callbacks.validation.num_images=2"]
    full = run(make_cfg, overrides, tmp_path / "full")
    full_losses, recorder["losses"] = recorder["losses"], {}
    best = sorted((tmp_path / "full" / "checkpoints").glob("best-psnr_gt-*.ckpt"))
    assert [int(p.stem.rsplit("-", 1)[1]) for p in best] == [1, 2, 3, 4, 5, 6]  # k = 6: every validation kept
    resumed = run(make_cfg, overrides, tmp_path / "resumed", f"ckpt_path={best[2]}")  # from iteration 3
    assert resumed["iteration"] == 6
    assert_same_state(full["module"].state_dict(), resumed["module"].state_dict())
    assert set(recorder["losses"]) == {4, 5, 6}
    for it, losses in recorder["losses"].items():
        common = losses.keys() & full_losses[it].keys()
        assert common and all(losses[k] == pytest.approx(full_losses[it][k], abs=ATOL) for k in common), it
    from suite.callbacks import IterationCheckpoint

    checkpoint = next(c for c in resumed["trainer"].callbacks if isinstance(c, IterationCheckpoint))
    assert sorted(it for _v, it, _n in checkpoint.best) == [1, 2, 3, 4, 5, 6]  # inherited 1–3, added 4–6
