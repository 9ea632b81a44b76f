"""Packages whose public names are imported on first use.

Every system's package is imported when the `autofm` command builds its parser, so a package's
`__init__` must not import torch, scikit-learn or matplotlib: it names its public API module by
module and `lazy_exports` imports a module when one of its names is first used. A public name
must not also be a submodule's name: importing the submodule would replace the name on the
package (`tests/core/test_lazy_exports.py` checks this for every package).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable


def lazy_exports(
    package: str, exports: dict[str, list[str]]
) -> tuple[list[str], Callable[[str], object], Callable[[], list[str]]]:
    """`__all__`, `__getattr__` and `__dir__` for `package`, whose public names live in its
    submodules: `exports` maps a submodule's name to the names it provides."""
    module_of = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> object:
        if name not in module_of:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module_of[name]}"), name)
        setattr(sys.modules[package], name, value)  # later lookups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(module_of))

    return sorted(module_of), __getattr__, __dir__
