"""Plumbing shared by all systems: checkpoints, progress, reports, runtime, validation, errors.

Names are imported lazily so that `import autofm.core.errors` (as the CLI does) does not pull in
torch and matplotlib.
"""

import importlib

_EXPORTS = {
    "find_pretrained": "checkpoint",
    "list_pretrained": "checkpoint",
    "load_checkpoint": "checkpoint",
    "load_pretrained": "checkpoint",
    "load_state_into": "checkpoint",
    "save_checkpoint": "checkpoint",
    "AutofmError": "errors",
    "CheckpointError": "errors",
    "DataNotFoundError": "errors",
    "ValidationError": "errors",
    "atomic_path": "io",
    "atomic_write_json": "io",
    "atomic_write_text": "io",
    "progress": "progress",
    "set_quiet": "progress",
    "status": "progress",
    "Report": "report",
    "resolve_device": "runtime",
    "seed_everything": "runtime",
    "setup_torch": "runtime",
    "check_array": "validation",
    "check_columns": "validation",
    "check_consistent_length": "validation",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'autofm.core' has no attribute {name!r}")
    return getattr(importlib.import_module(f"autofm.core.{_EXPORTS[name]}"), name)
