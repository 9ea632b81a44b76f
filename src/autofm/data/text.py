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


# packages of the standard library folder that are not its source: installed packages, tests, IDLE
_NOT_STDLIB = ("site-packages", "dist-packages", "test", "tests", "idlelib")


def full_stdlib_corpus() -> bytes:
    """Every module of the Python standard library (sorted, recursive; without installed
    packages, test suites and IDLE): about 11 MB, on every machine that has Python."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = [
        path
        for path in sorted(root.rglob("*.py"))
        if not set(path.relative_to(root).parts) & set(_NOT_STDLIB)
    ]
    if not files:
        raise DataNotFoundError(f"no Python sources found under {root}")
    return b"".join(path.read_bytes() for path in files)


def shared_texts() -> list[tuple[str, bytes]]:
    """(name, bytes) of each plain-text file in the shared data's `text/` folder (sorted;
    empty when the folder is absent). The text-classification sets are not included: they are
    the finetuning tasks, kept unseen by pretraining."""
    from autofm.data.paths import shared_data_dir

    root = shared_data_dir(required=False)
    folder = root / "text" if root else None
    if folder is None or not folder.is_dir():
        return []
    return [(path.name, path.read_bytes()) for path in sorted(folder.glob("*.txt"))]


CORPORA = {
    "stdlib": "the first 2 MB of the standard library's top-level modules",
    "stdlib+text": "the whole standard library's source plus the shared text/*.txt files "
    "(the pretraining corpus of the shipped parent GPT)",
}


def corpus_sources(spec: str | os.PathLike) -> list[tuple[str, bytes]]:
    """The (name, bytes) sources of a corpus: a file, or a name in `CORPORA`."""
    if str(spec) == "stdlib":
        return [("stdlib", stdlib_corpus())]
    if str(spec) == "stdlib+text":
        return [("stdlib", full_stdlib_corpus()), *shared_texts()]
    data = load_text(spec)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        from autofm.core.progress import status

        status(f"note: {spec} is not valid UTF-8; it is modelled byte by byte, which is fine")
    return [(str(spec), data)]


def corpus_identity(spec: str | os.PathLike) -> str | dict:
    """A corpus name as given; a text file by its content (the same text under another name or
    path is the same corpus, an edited file is not): for checking that a resumed run reads the
    text it started on."""
    from autofm.core.checkpoint import sha256_cached

    path = Path(spec)
    return {"sha256": sha256_cached(path)} if path.is_file() else str(spec)


def load_corpus(spec: str | os.PathLike) -> np.ndarray:
    """Byte tokens of a corpus: a text file, or a name in `CORPORA` ('stdlib', 'stdlib+text').

    A file that is not valid UTF-8 is modelled byte by byte all the same (a note says so)."""
    return encode(b"".join(data for _, data in corpus_sources(spec)))


def load_corpus_split(
    spec: str | os.PathLike, validation_fraction: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) tokens of a corpus, split within each source (its leading part trains,
    its trailing `validation_fraction` validates), so every source is in both."""
    parts = [split_tokens(encode(data), validation_fraction) for _, data in corpus_sources(spec)]
    return np.concatenate([t for t, _ in parts]), np.concatenate([v for _, v in parts])


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


def csv_columns(path: str | os.PathLike) -> list[str]:
    """The header of a CSV file; ValidationError if it cannot be read as one."""
    import pandas as pd

    try:
        return list(pd.read_csv(path, nrows=0).columns)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ValidationError(f"{path} is not a readable CSV ({err})") from err


def read_text_csv(path: str | os.PathLike, columns: tuple[str, ...], what: str):
    """A CSV of text columns, every value a string (a text "NA" stays a string); a missing file,
    an unreadable CSV, missing `columns` or no rows are refused, calling the file a `what`."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"{what} {path} not found")
    try:
        frame = pd.read_csv(path, keep_default_na=False, dtype=str)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ValidationError(f"{path} is not a readable CSV ({err})") from err
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValidationError(
            f"{path} has no {missing} column(s); a {what} needs columns {','.join(columns)} "
            f"(it has {list(frame.columns)})"
        )
    if frame.empty:
        raise ValidationError(f"{path} has a header but no rows")
    return frame


def load_classification_csv(path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """(texts, labels) from a CSV with columns `text,label`; labels as given, as strings
    (whole numbers written without a decimal point). Turn them into class indices with
    `encode_labels`. A text "NA" stays a string; empty texts, empty labels and missing columns
    are refused."""
    frame = read_text_csv(path, ("text", "label"), "text-classification CSV")
    texts = frame["text"].astype(str).tolist()
    empty = [i for i, t in enumerate(texts) if not t.strip()]
    if empty:
        raise ValidationError(
            f"{path} has {len(empty)} empty text(s) (first at data row {empty[0] + 1}); "
            "drop or fill them"
        )
    labels = [label.strip() for label in frame["label"].astype(str)]
    if any(not label for label in labels):
        raise ValidationError(f"{path} has rows without a label; every row needs one")
    return texts, [_whole_number_text(label) for label in labels]


def _whole_number_text(label: str) -> str:
    try:
        value = float(label)
    except ValueError:
        return label
    return str(int(value)) if value.is_integer() else label


def encode_labels(
    train: list[str], test: list[str] | None = None, source: str = "the training file"
) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """(classes, train indices, test indices): one mapping, made from the training labels
    (numerically sorted when they are all whole numbers, else alphabetically), for both files.
    A single training class, or a test label the training file lacks, is refused."""
    unique = set(train)
    if len(unique) < 2:
        raise ValidationError(
            f"{source} has a single class ({next(iter(unique))}); classification needs at least two"
        )
    numeric = all(_is_integer_text(label) for label in unique)
    classes = sorted(unique, key=int) if numeric else sorted(unique)
    index = {label: i for i, label in enumerate(classes)}
    test_indices = None
    if test is not None:
        unknown = sorted(set(test) - unique)
        if unknown:
            raise ValidationError(
                f"the test file has label(s) {unknown[:5]} that {source} lacks; every test "
                "class must be in the training data"
            )
        test_indices = np.array([index[label] for label in test], dtype=np.int64)
    return classes, np.array([index[label] for label in train], dtype=np.int64), test_indices


def _is_integer_text(label: str) -> bool:
    try:
        int(label)
    except ValueError:
        return False
    return True
