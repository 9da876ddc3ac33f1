"""The suite's Lightning callbacks, one job per module. ``train()`` always adds :class:`RngResume` (exact
resume is part of the checkpoint contract); the others are chosen in ``conf/callbacks/``."""

from suite.callbacks.checkpoint import STOP_SIGNALS, IterationCheckpoint
from suite.callbacks.rng import RngResume, collect_rng_states, restore_rng_states
from suite.callbacks.samples import SampleGrids

__all__ = ["STOP_SIGNALS", "IterationCheckpoint", "RngResume", "SampleGrids", "collect_rng_states", "restore_rng_states"]
