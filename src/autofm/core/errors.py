"""Error types raised on bad input; the CLI prints them in one line and exits with code 2."""


class AutofmError(Exception):
    """Base class of every error autofm raises on purpose; its message says what to do."""


class ValidationError(AutofmError, ValueError):
    """Input data or arguments are wrong (shape, NaN/inf, dtype, missing column, too few rows)."""


class CheckpointError(AutofmError):
    """A checkpoint is missing, unreadable, tampered with, or does not match its config."""


class DataNotFoundError(AutofmError, FileNotFoundError):
    """A dataset or file the user pointed to does not exist or has the wrong layout."""
