"""Packages import their public names lazily, and the command line starts without torch & co."""

import importlib
import json
import pkgutil
import subprocess
import sys

import pytest

from autofm.systems import systems

LAZY_PACKAGES = ["autofm.core", "autofm.data"] + [f"autofm.{name}" for name in systems()]
# numpy (~0.1 s) is allowed: small modules of constants and checks use it
HEAVY = ["torch", "sklearn", "scipy", "pandas", "matplotlib", "optuna", "transformers"]


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_every_public_name_resolves_to_its_submodules_object(package):
    module = importlib.import_module(package)
    assert module.__all__, f"{package} exports nothing"
    for name in module.__all__:
        value = getattr(module, name)
        assert not isinstance(value, type(module)), f"{package}.{name} is a module"
        assert name in dir(module)


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_no_public_name_is_also_a_submodule(package):
    # importing such a submodule would replace the function on the package with the module
    module = importlib.import_module(package)
    submodules = {info.name for info in pkgutil.iter_modules(module.__path__)}
    assert not submodules & set(module.__all__)


def test_unknown_name_is_an_attribute_error():
    import autofm.gam

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        autofm.gam.nope  # noqa: B018


def _modules_after(code: str) -> list[str]:
    script = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.splitlines()[-1])


def _autofm_submodules(loaded: list[str]) -> list[str]:
    """`autofm.<package>.<module>` names (packages themselves left out)."""
    return [m for m in loaded if m.startswith("autofm.") and m.count(".") >= 2]


def test_building_the_command_line_imports_no_heavy_library():
    loaded = _modules_after("from autofm.cli import build_parser\nbuild_parser()")
    heavy = sorted({name.split(".")[0] for name in loaded} & set(HEAVY))
    assert heavy == [], f"`autofm --help` imports {heavy}"
    # each system contributes its package and its cli module, nothing of its methods
    system_modules = [m for m in _autofm_submodules(loaded) if m.split(".")[1] in systems()]
    assert all(m.split(".")[2] in ("cli", "methods") for m in system_modules), system_modules


def test_a_system_command_imports_no_other_system():
    loaded = _modules_after(
        "from autofm.cli import build_parser\n"
        "from autofm.ensemble.methods import make_ensembler\n"
        "build_parser().parse_args(['ensemble', 'fit', 'pool'])\n"
        "make_ensembler('greedy').fit"
    )
    assert "autofm.ensemble.strategies.greedy" in loaded
    foreign = [
        m
        for m in _autofm_submodules(loaded)
        if m.split(".")[1] not in ("ensemble", "core", "data") and m.split(".")[2] != "cli"
    ]
    assert foreign == []
