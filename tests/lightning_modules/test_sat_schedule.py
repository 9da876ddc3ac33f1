"""SAT's published schedule read per phase (Sec. 3: constant for the first half of a phase, then linear decay to 0)
and the λ-induction guard (λ rises at least once per phase), on hand-computed values."""

from __future__ import annotations

import pytest

from lightning_modules.sat import AdaptiveWeightInduction
from suite.errors import ConfigError
from suite.training import build_method
from tests.lightning_modules.test_sat import INFO, iterate, make
from tests.methods import method_config
from tests.trainer_stub import attach_trainer_stub as attach_trainer

pytestmark = pytest.mark.usefixtures("no_weight_downloads")


# ------------------------------------------------------------------------------------------ λ guard
def test_lambda_rises_once_even_when_the_loss_starts_below_the_threshold():
    """The stall of the unguarded rule: a discriminator already below ℓ_adv^t at the first update held λ at 0."""
    ind = AdaptiveWeightInduction(step=0.1, every=10, threshold=0.8, smoothing=0.9)  # the default guard
    values = [ind.update(0.5) for _ in range(40)]
    assert values[:9] == [0.0] * 9  # no increment before the first interval
    assert values[9:] == [pytest.approx(0.1)] * 31 and ind.holding and ind.increments == 1
    unguarded = AdaptiveWeightInduction(step=0.1, every=10, threshold=0.8, smoothing=0.9, min_increments=0)
    assert {float(unguarded.update(0.5)) for _ in range(40)} == {0.0} and unguarded.holding


def test_guard_of_three_increments_then_the_usual_hold():
    ind = AdaptiveWeightInduction(step=0.5, every=2, threshold=0.8, smoothing=0.0, min_increments=3)
    values = [ind.update(0.1) for _ in range(8)]
    assert values == [0.0, 0.5, 0.5, 1.0, 1.0, 1.5, 1.5, 1.5]  # three increments, then the hold test applies
    assert ind.holding and ind.increments == 3


def test_guard_survives_a_checkpoint_and_is_validated():
    ind = AdaptiveWeightInduction(step=1.0, every=1, threshold=2.0, smoothing=0.0)
    ind.update(1.0)
    state = ind.state_dict()
    assert state["increments"] == 1 and state["value"] == 1.0
    copy = AdaptiveWeightInduction(step=1.0, every=1, threshold=2.0, smoothing=0.0)
    copy.load_state_dict({k: v for k, v in state.items() if k != "increments"})  # a checkpoint from before the guard
    assert copy.increments == 1
    with pytest.raises(ConfigError, match="min_increments"):
        AdaptiveWeightInduction(min_increments=-1)


def test_lambda_rises_in_every_phase_of_the_module_when_d_is_ahead_from_the_start():
    # threshold 10: the monitored L_D is below it at every update — the stall case
    m = make("method.induction.step=0.5", "method.induction.every=1", "method.induction.threshold=10")
    attach_trainer(m)
    lambdas = [float(iterate(m)["schedule/lambda"]) for _ in range(6)]
    assert lambdas == [0.0, 0.5, 0.0, 0.5, 0.5, 0.5]  # phase 1: one rise, hold; phase 2 restarts; phase 3 keeps
    stalled = make("method.induction.step=0.5", "method.induction.every=1", "method.induction.threshold=10",
                   "method.induction.min_increments=0")
    attach_trainer(stalled)
    assert {float(iterate(stalled)["schedule/lambda"]) for _ in range(6)} == {0.0}


def test_lambda_is_kept_in_the_joint_phase_even_when_it_never_held():
    # threshold −1: the monitored loss never sinks below it, so λ never holds and would rise for ever
    m = make("method.induction.step=0.5", "method.induction.every=1", "method.induction.threshold=-1")
    attach_trainer(m)
    lambdas = [float(iterate(m)["schedule/lambda"]) for _ in range(8)]
    assert lambdas[:4] == [0.0, 0.5, 0.0, 0.5]  # phases 1 and 2 (2 iterations each): induced from 0
    assert lambdas[4:] == [1.0, 1.0, 1.0, 1.0]  # phase 3: the value phase 2 reached, kept
    assert not m.induction.holding


# ------------------------------------------------------------------------------------- lr per phase
PHASED = ("method.phases.g0=4", "method.phases.attention=4", "trainer.max_steps=12",
          "method.schedule.decay_start_fraction=0.5")
# hand-computed: each phase [first, end) is constant up to its midpoint, then 1 − (i − mid) / (end − mid)
EXPECTED = {  # iteration → {optimizer: factor}
    0: {"G0": 1.0, "A": 1.0, "joint": 1.0, "D": 1.0},
    3: {"G0": 0.5, "A": 1.0, "joint": 1.0, "D": 0.5},
    4: {"G0": 0.0, "A": 1.0, "joint": 1.0, "D": 1.0},   # phase 2 starts: D back to full lr
    7: {"G0": 0.0, "A": 0.5, "joint": 1.0, "D": 0.5},
    9: {"G0": 0.0, "A": 0.0, "joint": 1.0, "D": 1.0},
    11: {"G0": 0.0, "A": 0.0, "joint": 0.5, "D": 0.5},
    12: {"G0": 0.0, "A": 0.0, "joint": 0.0, "D": 0.0},
}


def test_each_phase_is_constant_for_its_first_half_then_decays_to_zero():
    m = make(*PHASED)
    for iteration, factors in EXPECTED.items():
        m.iteration = iteration
        assert {n: m.phase_lr_factor(n) for n in factors} == pytest.approx(factors), iteration


def test_the_optimizers_follow_the_phase_schedule():
    m = make(*PHASED)
    optimizers, schedulers = m.configure_optimizers()
    names = m._optimizer_names
    lr = {"G0": 2e-4, "A": 2e-4, "joint": 2e-5, "D": 2e-4}
    for iteration, factors in EXPECTED.items():
        m.iteration = iteration
        for sched in schedulers:
            sched.step()
        got = {n: opt.param_groups[0]["lr"] for n, opt in zip(names, optimizers)}
        assert got == pytest.approx({n: lr[n] * f for n, f in factors.items()}), iteration


def test_d_lr_can_be_scaled_per_phase():
    m = make(*PHASED, "method.d_lr_scales=[1.0,0.5,0.1]")
    for iteration, factors in EXPECTED.items():  # D's factor × the phase's multiplier; the generators unchanged
        m.iteration = iteration
        scale = 1.0 if iteration < 4 else 0.5 if iteration < 8 else 0.1
        assert m.phase_lr_factor("D") == pytest.approx(scale * factors["D"]), iteration
        assert m.phase_lr_factor("joint") == pytest.approx(factors["joint"]), iteration
    m = make(*PHASED, "method.d_lr_scales=[1.0,1.0,0.1]", "method.schedule.per_phase=false")
    m.iteration = 9
    assert m.phase_lr_factor("D") == pytest.approx(0.05) and m.phase_lr_factor("G0") == pytest.approx(0.5)
    with pytest.raises(ConfigError, match="d_lr_scales needs three"):
        build_method(method_config("sat", "method.d_lr_scales=[1.0,0.1]", schedule=False), INFO)


def test_per_phase_off_is_one_decay_over_the_run_and_epochs_are_refused():
    m = make(*PHASED, "method.schedule.per_phase=false")
    m.iteration = 9  # the run's decay starts at 6 and ends at 12
    assert {n: m.phase_lr_factor(n) for n in ("G0", "A", "joint", "D")} == pytest.approx(
        {n: 0.5 for n in ("G0", "A", "joint", "D")})
    with pytest.raises(ConfigError, match="per_phase"):
        make(*PHASED, "method.schedule.decay_start_fraction=null", "+method.schedule.decay_start_epoch=1")


def test_without_attention_the_one_phase_is_the_whole_run():
    m = make("method.use_attention=false", "trainer.max_steps=10", "method.schedule.decay_start_fraction=0.5")
    m.iteration = 8  # decay from 5 to 10
    assert m.phase_lr_factor("G0") == pytest.approx(0.4) and m.phase_lr_factor("D") == pytest.approx(0.4)
