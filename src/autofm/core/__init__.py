"""Plumbing shared by all systems: checkpoints, progress, reports, runtime, validation, errors."""

from autofm.core.checkpoint import (
    find_pretrained,
    list_pretrained,
    load_checkpoint,
    load_pretrained,
    load_state_into,
    save_checkpoint,
)
from autofm.core.errors import AutofmError, CheckpointError, DataNotFoundError, ValidationError
from autofm.core.io import atomic_path, atomic_write_json, atomic_write_text
from autofm.core.progress import progress, set_quiet, status
from autofm.core.report import Report
from autofm.core.runtime import resolve_device, seed_everything, setup_torch
from autofm.core.validation import check_array, check_columns, check_consistent_length

__all__ = [
    "AutofmError",
    "CheckpointError",
    "DataNotFoundError",
    "Report",
    "ValidationError",
    "atomic_path",
    "atomic_write_json",
    "atomic_write_text",
    "check_array",
    "check_columns",
    "check_consistent_length",
    "find_pretrained",
    "list_pretrained",
    "load_checkpoint",
    "load_pretrained",
    "load_state_into",
    "progress",
    "resolve_device",
    "save_checkpoint",
    "seed_everything",
    "set_quiet",
    "setup_torch",
    "status",
]
