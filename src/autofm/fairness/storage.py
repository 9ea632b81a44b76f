"""Where a search lives and how it draws: the storage URL, opening the storage, the sampler.

All runs of a search share one Optuna storage (SQLite in the run folder by default; any RDB URL,
e.g. PostgreSQL, works the same), so a killed run resumes and several workers can share a study.
The implementation is shared by every system: `autofm.core.study`.
"""

from autofm.core.study import (
    SAMPLERS,
    experimental_features,
    make_sampler,
    open_storage,
    storage_url,
)

__all__ = ["SAMPLERS", "experimental_features", "make_sampler", "open_storage", "storage_url"]
