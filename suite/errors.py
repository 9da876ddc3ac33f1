"""One exception family for everything a user can get wrong.

Every error a user can cause (bad data, bad config, wrong checkpoint) is raised as a ``SuiteError`` whose
message is one sentence saying what was wrong and what was expected. ``train.py`` and ``evaluate.py`` print
that sentence alone (no traceback) and exit with status 2.
"""


class SuiteError(Exception):
    """A problem the user can fix; the message says how."""


class DatasetError(SuiteError):
    """A dataset is missing, malformed, or lacks the labels a method needs."""


class ConfigError(SuiteError):
    """A configuration value is invalid or two choices are incompatible."""


class CheckpointError(SuiteError):
    """A checkpoint is missing, corrupt, or belongs to another method or suite version."""


class DivergenceError(SuiteError):
    """A loss or gradient became NaN or infinite."""


class WeightsMissingError(SuiteError):
    """Pretrained weights are needed but not in the local torch cache."""
