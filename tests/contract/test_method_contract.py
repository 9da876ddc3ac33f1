"""The contract every method keeps, checked for all seven at their tiny size (tests/methods.py), through the public
API (``train_iteration``, ``optimizer_groups``, ``iteration``, ``translate``, ``sample_target``) and Lightning:

- an update touches only its own networks: each optimizer step changes the parameters of that optimizer and of no
  other, and every network it trains; parameters in no optimizer never change; ``requires_grad`` is restored;
- ``translate`` returns its documented keys with the input's batch and size, images in [−1, 1], masks in [0, 1];
- a checkpoint written by a run loads back (as ``evaluate.py`` loads it) into a module with identical outputs;
- seeded determinism: two builds trained with the same seed give bit-identical losses;
- resume equivalence: k iterations + checkpoint + the rest gives the uninterrupted run's weights and losses.

Method-specific behaviour (losses on hand-made cases, ablations, schedules) stays in tests/lightning_modules."""

from __future__ import annotations

import warnings

import pytest
import pytorch_lightning as pl
import torch

from suite.evaluation import load_checkpoint_run
from suite.training import train
from tests.methods import METHODS, build
from tests.suite.test_resume import (
    assert_resume_matches,
    recorder,  # noqa: F401  (the fixture assert_resume_matches needs)
)
from tests.trainer_stub import attach_trainer_stub

NAMES = list(METHODS)


def trained(name: str, seed: int = 0):
    """The tiny ``name``, seeded, with a loop-less trainer, ready for ``train_iteration``."""
    pl.seed_everything(seed, verbose=False)
    module = build(name, quiet=True)
    attach_trainer_stub(module, "cpu")
    return module


def iterate(module, name: str, record=None) -> list[dict[str, float]]:
    """Run the registry's number of iterations on its batch; returns each iteration's logged values."""
    batch, logs = METHODS[name].batch(), []
    for it in range(METHODS[name].iterations):
        module.iteration = it
        logs.append({k: float(v) for k, v in module.train_iteration(batch).items()})
    return logs


@pytest.mark.parametrize("name", NAMES)
def test_each_update_changes_only_its_own_networks(name):
    module = trained(name)
    params = {n: p for n, p in module.named_parameters() if not n.startswith("ema_nets.")}
    requires_grad = {n: p.requires_grad for n, p in params.items()}
    initial = {n: p.detach().clone() for n, p in params.items()}
    steps: list[tuple[str, set[str], set[str]]] = []  # (optimizer, its parameters, parameters its step changed)
    for opt_name, opt in zip(module.optimizer_groups(), module.trainer.strategy.optimizers):
        own = {id(p) for group in opt.param_groups for p in group["params"]}
        own_names = {n for n, p in params.items() if id(p) in own}
        before: dict[str, torch.Tensor] = {}

        def pre(*_args, before=before):
            before.update({n: p.detach().clone() for n, p in params.items()})

        def post(*_args, opt_name=opt_name, own_names=own_names, before=before):
            steps.append((opt_name, own_names, {n for n, p in params.items() if not torch.equal(before[n], p)}))

        opt.register_step_pre_hook(pre)
        opt.register_step_post_hook(post)

    iterate(module, name)

    assert {s[0] for s in steps} == set(module.optimizer_groups()), "every optimizer steps in a few iterations"
    for opt_name, own, changed in steps:
        assert changed <= own, f"{opt_name} step changed {sorted(changed - own)[:3]}, which it does not own"
        nets = lambda names: {n.split(".")[0] for n in names}  # noqa: E731
        assert nets(own) <= nets(changed), f"{opt_name} step left {sorted(nets(own) - nets(changed))} unchanged"
    in_none = set(params) - set().union(*(own for _, own, _ in steps))
    assert all(torch.equal(initial[n], params[n]) for n in in_none), "a parameter in no optimizer changed"
    assert {n: p.requires_grad for n, p in params.items()} == requires_grad


@pytest.mark.parametrize("name", NAMES)
def test_translate_returns_its_documented_outputs(name):
    module = trained(name)
    iterate(module, name)
    module.eval()
    batch = METHODS[name].batch()
    x = batch["image"]
    out = module.translate(x, module.sample_target(batch))
    assert set(out) == set(METHODS[name].outputs)
    for key, channels in METHODS[name].outputs.items():
        assert torch.isfinite(out[key]).all(), key
        if channels is not None:
            assert out[key].shape == (x.shape[0], channels, *x.shape[2:]), key
    assert out["image"].dtype == x.dtype and out["image"].abs().max() <= 1
    if "mask" in out:
        assert out["mask"].min() >= 0 and out["mask"].max() <= 1


@pytest.mark.parametrize("name", NAMES)
def test_seeded_training_is_deterministic(name):
    first, second = iterate(trained(name, seed=3), name), iterate(trained(name, seed=3), name)
    assert first == second


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_round_trip_gives_identical_outputs(make_cfg, tmp_path, name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = train(make_cfg(*METHODS[name].run, "trainer.max_steps=1", run_dir=tmp_path / "r"))
        loaded, _, _ = load_checkpoint_run(run["checkpoint"])
    live = run["module"].eval()
    assert loaded.iteration == live.iteration == 1
    live_state, loaded_state = live.state_dict(), loaded.state_dict()
    assert live_state.keys() == loaded_state.keys()
    assert all(torch.equal(live_state[k], loaded_state[k]) for k in live_state)
    batch = METHODS[name].batch()
    if METHODS[name].info["image_size"] != 32:  # the registry's unit batch is at another size than the run's
        batch = {k: (torch.nn.functional.interpolate(v, size=32) if k in ("image", "ref") else v)
                 for k, v in batch.items()}
    outputs = []
    for module in (live, loaded):
        torch.manual_seed(0)
        outputs.append(module.translate(batch["image"], module.sample_target(batch)))
    assert all(torch.equal(outputs[0][k], outputs[1][k]) for k in outputs[0])


@pytest.mark.parametrize("name", NAMES)
def test_resumed_run_matches_uninterrupted_run(make_cfg, tmp_path, recorder, name):  # noqa: F811
    assert_resume_matches(make_cfg, tmp_path, recorder, METHODS[name].run, k=2, n=5)
