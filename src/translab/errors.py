"""The errors translab reports to users as one clear line (the CLI prints them without a traceback).

Every such error derives from TranslabError (each also keeps the built-in base it had, ValueError or
RuntimeError, so ``except ValueError`` still catches a ConfigError). This module imports nothing of translab.
"""
from __future__ import annotations


class TranslabError(Exception):
    """Base of the errors that name a file or value and what was expected, shown to users as one line."""


class UsageError(TranslabError, ValueError):
    """A command-line value that cannot work: a file where a folder is expected, an output folder that would be
    overwritten, a file name with the wrong suffix. The message names the value and what was expected."""


#: what the CLI prints as one line (a missing file is reported by the OS error's own message)
USER_ERRORS = (TranslabError, FileNotFoundError)
