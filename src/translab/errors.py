"""The errors translab reports to users as one clear line (the CLI prints them without a traceback)."""
from __future__ import annotations

from translab.checkpoint import CheckpointError
from translab.config import ConfigError
from translab.data.base import DataError
from translab.methods.base import MethodError
from translab.rundir import RunDirError


class UsageError(ValueError):
    """A command-line value that cannot work: a file where a folder is expected, an output folder that would be
    overwritten, a file name with the wrong suffix. The message names the value and what was expected."""


def _training_error():
    from translab.training import TrainingError

    return TrainingError


USER_ERRORS = (CheckpointError, ConfigError, DataError, MethodError, RunDirError, UsageError,
               FileNotFoundError)
try:
    USER_ERRORS = USER_ERRORS + (_training_error(),)
except ImportError:  # pragma: no cover
    pass
