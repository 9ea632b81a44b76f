"""Text corpora as bytes, with byte-level encoding (vocabulary of 256)."""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path

import numpy as np

from autofm.core.errors import DataNotFoundError, ValidationError

VOCAB_SIZE = 256


def load_text(path: str | os.PathLike) -> bytes:
    """The raw bytes of a text file. Any bytes are accepted: encoding is byte-level, not UTF-8."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"corpus file {path} not found")
    data = path.read_bytes()
    if not data:
        raise ValidationError(f"corpus {path} is empty; give a file with text in it")
    return data


def stdlib_corpus(max_bytes: int = 2_000_000) -> bytes:
    """Python standard library source (sorted files, deterministic) up to `max_bytes`."""
    root = Path(sysconfig.get_paths()["stdlib"])
    chunks, total = [], 0
    for path in sorted(root.glob("*.py")):
        data = path.read_bytes()
        chunks.append(data)
        total += len(data)
        if total >= max_bytes:
            break
    if not chunks:
        raise DataNotFoundError(f"no Python sources found under {root}")
    return b"".join(chunks)[:max_bytes]


def load_corpus(spec: str | os.PathLike) -> np.ndarray:
    """Byte tokens of a text file, or of the Python standard library's source for 'stdlib'.

    A file that is not valid UTF-8 is modelled byte by byte all the same (a note says so)."""
    if str(spec) == "stdlib":
        return encode(stdlib_corpus())
    data = load_text(spec)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        from autofm.core.progress import status

        status(f"note: {spec} is not valid UTF-8; it is modelled byte by byte, which is fine")
    return encode(data)


def encode(data: bytes | str) -> np.ndarray:
    """Bytes (or a str, as UTF-8) → uint8 token ids."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return np.frombuffer(data, dtype=np.uint8).copy()


def decode(tokens) -> str:
    """Token ids → text (invalid UTF-8 sequences replaced)."""
    return bytes(np.asarray(tokens, dtype=np.uint8).tolist()).decode("utf-8", errors="replace")


def split_tokens(
    tokens: np.ndarray, validation_fraction: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """Split a token stream into a leading train part and a trailing validation part."""
    if not 0 < validation_fraction < 1:
        raise ValidationError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    cut = int(len(tokens) * (1 - validation_fraction))
    return tokens[:cut], tokens[cut:]


def sample_blocks(
    tokens: np.ndarray, block_size: int, batch_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Random (input, next-token target) blocks of shape [batch_size, block_size]."""
    if len(tokens) <= block_size + 1:
        raise ValidationError(
            f"corpus has {len(tokens)} tokens; need more than block_size + 1 = {block_size + 1}"
        )
    starts = rng.integers(0, len(tokens) - block_size - 1, size=batch_size)
    index = starts[:, None] + np.arange(block_size + 1)[None, :]
    blocks = tokens[index].astype(np.int64)
    return blocks[:, :-1], blocks[:, 1:]
