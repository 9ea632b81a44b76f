"""The sha256 of every file of every checkpoint shipped in this folder.

`SHIPPED[name]` maps each file of the shipped checkpoint `name` (a `name.json` +
`name.safetensors` pair, or a folder such as `finetune-tuner/`), as a path relative to the
folder holding it, to its sha256. A shipped name loads only if its files have exactly these
hashes, wherever it is found (`autofm.core.checkpoint.verify_shipped`): a checkpoint swapped in
the package or put under a shipped name in $AUTOFM_CHECKPOINTS is refused, even when its JSON
records the sha256 of its swapped weights.

After retraining or recalibrating a shipped checkpoint, regenerate the dict from the files:

    python -m autofm.checkpoints.registry --update

(without `--update` it only says whether the dict matches the files; exit status 1 if not).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from autofm.core.io import atomic_write_text

FOLDER = Path(__file__).resolve().parent
SUFFIXES = (".json", ".safetensors")  # the files pyproject's package-data ships
_FIRST_LINE = "SHIPPED: dict[str, dict[str, str]] = {"

SHIPPED: dict[str, dict[str, str]] = {
    "finetune-tuner": {
        "finetune-tuner/cost.json": "e8bbba43276e8aa9795177a1efe7ae08705def0265dbb624a8d88123ea348ff3",
        "finetune-tuner/cost.safetensors": "04800f9cd453006a6b49d7d4161fb386734322eaef1d8b2dd598008fdaecba66",
        "finetune-tuner/perf.json": "8197d474b7eda7d1542289266f204812b8bd9888e69f7e812bc567093fcbf750",
        "finetune-tuner/perf.safetensors": "8ed36c9d8cb7aff016fea3c7ef74dc8acb4f80cc782f3f9cfa228760b047c023",
        "finetune-tuner/tuner.json": "f82e66f90c625fb706710f85b28bbbede50cb7cadd0c06ede44d3167d1d4e7a6",
    },
    "gamformer-cpu": {
        "gamformer-cpu.json": "0eb51a14d22b28db433c445d04a7888012cf0b63f3fc7f9367967b592baaca3e",
        "gamformer-cpu.safetensors": "4d8013d1cfd8465454ef59740c0f20fa9999c890fcdb99fcbe73a057a2e65034",
    },
    "gpt-parent": {
        "gpt-parent.json": "e28d64c3903bfcbb5b5a8ccabf70d248c72fe7ffe32ea314f2ba4e18c50bc451",
        "gpt-parent.safetensors": "ed457b5d99ae22f397cd799e6f4960ebb09d2b818efd582aa10266eb1ba8135c",
    },
    "gpt-parent-supernet": {
        "gpt-parent-supernet.json": "9e46204ecb3d46e5a790b433f9c80370ebc0bc51faad949391070d2c16449703",
        "gpt-parent-supernet.safetensors": "7c983ae51ceccad3b7c94c2914013f283e6b32a319aa4771216a93c0f68663ed",
    },
    "icl-counting": {
        "icl-counting.json": "71d17a641ce50b0b2a519fbd30d26d419bb57911d537ca9ab721c76fa603f61a",
        "icl-counting.safetensors": "0de23a28627318c953ad6373b8f88df88c788df0400218c24a838f04bcf1e170",
    },
    "icl-gp": {
        "icl-gp.json": "2c27f82bebd7488d716c02c65b27be11814823bddd8b056893867eaaea5b29ee",
        "icl-gp.safetensors": "e9dfa2566b6ecd35ef20766f1f350f1a2aa4704e50f294f81199527c9d2d558f",
    },
    "icl-sine-line": {
        "icl-sine-line.json": "3294db9933321f1db1cf966c8d7590a4a5db22d2e9f6fcd9e800d36bf1728051",
        "icl-sine-line.safetensors": "a4262f39cec16b5944de761e6b107bceecceaa76fc82a0bfc0efcf206b433685",
    },
    "icl-steps": {
        "icl-steps.json": "1ef4dbc265555be3f9498b2020815e207bda33d70d0ff71c3c101b7e0046dc9c",
        "icl-steps.safetensors": "2ae164161e9ae52e622dfccaf2b96359131b1a1950d6f9af8ab84775ac3991cb",
    },
    "mamba4cast-cpu": {
        "mamba4cast-cpu.json": "041e7f94e0c5e7dabbaea38590d1a7510d2ce49c648324fee6208a128211b47c",
        "mamba4cast-cpu.safetensors": "3ce0cc26ac475c8e03a251d03357182d9e54406dc34c86e01a2415dda7c15dc2",
    },
}


def scan(folder: Path = FOLDER) -> dict[str, dict[str, str]]:
    """The registry of the checkpoints in `folder`, hashed from the files on disk."""
    from autofm.core.checkpoint import sha256_file

    shipped = {}
    for meta in sorted(folder.glob("*.json")):
        weights = folder / f"{meta.stem}.safetensors"
        if weights.is_file():
            shipped[meta.stem] = {path.name: sha256_file(path) for path in (meta, weights)}
    for subfolder in sorted(p for p in folder.iterdir() if p.is_dir() and p.name[0] not in "._"):
        files = sorted(p for p in subfolder.iterdir() if p.is_file() and p.suffix in SUFFIXES)
        if files:
            shipped[subfolder.name] = {f"{subfolder.name}/{p.name}": sha256_file(p) for p in files}
    return dict(sorted(shipped.items()))


def render(shipped: dict[str, dict[str, str]]) -> str:
    """The `SHIPPED = {...}` literal of this module (as `ruff format` leaves it)."""
    lines = [_FIRST_LINE]
    for name, files in shipped.items():
        lines.append(f"    {json.dumps(name)}: {{")
        lines += [f"        {json.dumps(file)}: {json.dumps(sha)}," for file, sha in files.items()]
        lines.append("    },")
    lines.append("}")
    return "\n".join(lines)


def rewrite(source: str, shipped: dict[str, dict[str, str]]) -> str:
    """`source` (this module's text) with its `SHIPPED` literal replaced by `shipped`'s."""
    lines = source.split("\n")
    start = next((i for i, line in enumerate(lines) if line.startswith(_FIRST_LINE[:8])), None)
    if start is None:
        raise ValueError(f"no line starting with {_FIRST_LINE!r}")
    end = start if lines[start].endswith("}") else lines.index("}", start)
    return "\n".join([*lines[:start], render(shipped), *lines[end + 1 :]])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m autofm.checkpoints.registry",
        description="Check (or with --update rewrite) the sha256 registry of shipped checkpoints.",
    )
    parser.add_argument("--update", action="store_true", help="rewrite SHIPPED from the files")
    parser.add_argument(
        "--folder",
        type=Path,
        default=FOLDER,
        help="checkpoints folder holding registry.py (default: this package's)",
    )
    args = parser.parse_args(argv)
    module_file = args.folder / "registry.py"
    source = module_file.read_text()
    updated = rewrite(source, scan(args.folder))
    if updated == source:
        print(f"{module_file} matches the checkpoints in {args.folder}")
        return 0
    if args.update:
        atomic_write_text(module_file, updated)
        print(f"{module_file} rewritten from the checkpoints in {args.folder}")
        return 0
    print(
        f"{module_file} does not match the checkpoints in {args.folder}; if they were retrained "
        "on purpose, run: python -m autofm.checkpoints.registry --update",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
