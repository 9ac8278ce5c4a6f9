"""The errors translab reports to users as one clear line (the CLI prints them without a traceback)."""
from __future__ import annotations

from translab.checkpoint import CheckpointError
from translab.config import ConfigError
from translab.data.base import DataError
from translab.methods.base import MethodError
from translab.rundir import RunDirError


def _training_error():
    from translab.training import TrainingError

    return TrainingError


USER_ERRORS = (CheckpointError, ConfigError, DataError, MethodError, RunDirError, FileNotFoundError)
try:
    USER_ERRORS = USER_ERRORS + (_training_error(),)
except ImportError:  # pragma: no cover
    pass
