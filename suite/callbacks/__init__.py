"""The suite's Lightning callbacks, one job per module. ``train()`` always adds :class:`RngResume` (exact
resume is part of the checkpoint contract); the others are chosen in ``conf/callbacks/``."""

from suite.callbacks.checkpoint import AUTO_MONITOR, STOP_SIGNALS, IterationCheckpoint
from suite.callbacks.progress import IterationProgressBar, critic_cycle
from suite.callbacks.rng import RngResume, collect_rng_states, restore_rng_states
from suite.callbacks.samples import SampleGrids
from suite.callbacks.validation import Validation, metric_mode

__all__ = ["AUTO_MONITOR", "STOP_SIGNALS", "IterationCheckpoint", "IterationProgressBar", "RngResume", "SampleGrids",
           "Validation", "collect_rng_states", "critic_cycle", "metric_mode", "restore_rng_states"]
