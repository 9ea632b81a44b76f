"""Plumbing shared by all systems: checkpoints, progress, reports, runtime, validation, errors.

Names are imported lazily so that `import autofm.core.errors` (as the CLI does) does not pull in
torch and matplotlib.
"""

from autofm.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    "autofm.core",
    {
        "checkpoint": [
            "find_pretrained",
            "list_pretrained",
            "load_checkpoint",
            "load_pretrained",
            "load_state_into",
            "save_checkpoint",
        ],
        "errors": ["AutofmError", "CheckpointError", "DataNotFoundError", "ValidationError"],
        "io": ["atomic_path", "atomic_write_json", "atomic_write_text"],
        "progress": ["set_quiet", "status"],
        "report": ["Report"],
        "runtime": ["resolve_device", "seed_everything", "setup_torch"],
        "validation": ["check_array", "check_columns", "check_consistent_length"],
    },
)
