"""Finetuning tasks as text-to-text examples for a byte-level language model.

Every task is a list of (prompt, answer) pairs, and the model is finetuned with the language-
modelling loss on the answer bytes only. One scheme for both kinds of task:

* classification: the answer is one *verbalizer* byte per class (the class name's first letter
  when those are distinct, else `a`, `b`, ...). The class probabilities are the softmax of the
  model's next-byte logits over the verbalizers after the prompt: one forward pass per example,
  as cheap as a classification head, but with no new untrained parameters, so the pretrained
  model's zero-shot prediction is a real baseline and LoRA alone adapts the model;
* question answering: the answer is a short string ended by a newline, scored by exact match.
  Greedy decoding produces the answer exactly iff every answer byte (and the newline) is the
  argmax given the true prefix, so exact match is computed in one teacher-forced forward pass.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from autofm.core.errors import DataNotFoundError, ValidationError
from autofm.data.text import (
    csv_columns,
    encode_labels,
    load_classification_csv,
    read_text_csv,
)

ANSWER_END = "\n"
MAX_TEXT_BYTES = 64  # classification texts are cut to this many bytes (their start is kept)


@dataclass
class Split:
    """Prompts and answers of one split; `labels` are class indices (classification only)."""

    prompts: list[str]
    answers: list[str]
    labels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.prompts)


@dataclass
class Task:
    """A finetuning task: train/val/test splits of (prompt, answer) examples."""

    name: str
    kind: str  # "classification" or "qa"
    train: Split
    val: Split
    test: Split
    classes: list[str] = field(default_factory=list)
    verbalizers: str = ""  # one character per class (classification)

    @property
    def metric(self) -> str:
        return "accuracy" if self.kind == "classification" else "exact_match"

    def fingerprint(self) -> str:
        """sha256 of every example: workers that rebuild a task check they have the same one."""
        digest = hashlib.sha256()
        for split in (self.train, self.val, self.test):
            digest.update(json.dumps([split.prompts, split.answers]).encode())
        return digest.hexdigest()


def verbalizers_for(classes: list[str]) -> str:
    """One distinct ASCII letter per class: first letters (lower case) if distinct, else a, b, …"""
    first = "".join(name.strip()[:1].lower() for name in classes)
    if len(set(first)) == len(classes) and first.isascii() and first.isalpha():
        return first
    if len(classes) > 26:
        raise ValidationError(f"at most 26 classes are supported, got {len(classes)}")
    return "abcdefghijklmnopqrstuvwxyz"[: len(classes)]


def classification_prompt(text: str) -> str:
    """The prompt of a classification example: the start of the text, then `label: `."""
    cut = text.encode("utf-8")[:MAX_TEXT_BYTES].decode("utf-8", errors="ignore")
    return f"{cut.strip()}\nlabel: "


def _classification_split(texts, labels, rows, verbalizers) -> Split:
    return Split(
        [classification_prompt(texts[i]) for i in rows],
        [verbalizers[labels[i]] for i in rows],
        np.asarray([labels[i] for i in rows], dtype=np.int64),
    )


def classification_task(
    name: str,
    texts: list[str],
    labels: np.ndarray,
    test_texts: list[str] | None = None,
    test_labels: np.ndarray | None = None,
    classes: list[str] | None = None,
    n_train: int | None = 128,
    n_val: int | None = 128,
    n_test: int | None = 256,
    seed: int = 0,
) -> Task:
    """A classification task: train and validation drawn (disjoint, shuffled) from the labelled
    texts; test from the test texts (or, without them, from the remaining labelled texts).
    `None` sizes take everything available."""
    labels = np.asarray(labels, dtype=np.int64)
    n_classes = int(max(labels.max(), -1 if test_labels is None else np.max(test_labels))) + 1
    classes = list(classes) if classes else [str(c) for c in range(n_classes)]
    if len(classes) < n_classes or len(classes) < 2 or labels.min() < 0:
        raise ValidationError(
            f"task {name}: labels must be class indices 0..{len(classes) - 1} of at least two "
            f"class names (got {len(classes)} names for labels {labels.min()}..{n_classes - 1})"
        )
    verbalizers = verbalizers_for(classes)
    order = np.random.default_rng(seed).permutation(len(texts))
    n_val = min(n_val or len(order) // 5, len(order) // 2)
    val_rows, rest = order[:n_val], order[n_val:]
    if test_texts is None:
        n_test = min(n_test or len(rest) // 3, len(rest) // 2)
        test_rows, rest = rest[:n_test], rest[n_test:]
    train_rows = rest[: n_train or len(rest)]
    if len(train_rows) < 2 or len(val_rows) < 1 or (test_texts is None and len(test_rows) < 1):
        raise ValidationError(
            f"task {name} has {len(texts)} labelled texts; need at least 4 for train and "
            "validation (and 6 without a test file)"
        )
    train = _classification_split(texts, labels, train_rows, verbalizers)
    val = _classification_split(texts, labels, val_rows, verbalizers)
    if test_texts is None:
        test = _classification_split(texts, labels, test_rows, verbalizers)
    else:
        test_order = np.random.default_rng(seed + 1).permutation(len(test_texts))
        test_rows = test_order[: n_test or len(test_order)]
        test = _classification_split(test_texts, np.asarray(test_labels), test_rows, verbalizers)
    return Task(name, "classification", train, val, test, classes, verbalizers)


def load_classification_folder(
    folder: str | os.PathLike, n_train=128, n_val=128, n_test=256, seed: int = 0
) -> Task:
    """A task from a folder with train.csv, test.csv and optionally meta.json (class names), the
    layout of ../shared/data/text/classification."""
    folder = Path(folder)
    texts, raw = load_classification_csv(folder / "train.csv")
    test_texts, test_raw = load_classification_csv(folder / "test.csv")
    classes, labels, test_labels = encode_labels(raw, test_raw, str(folder / "train.csv"))
    if (folder / "meta.json").is_file():  # class names by label index
        names = json.loads((folder / "meta.json").read_text()).get("classes") or []
        if all(c.isdigit() and int(c) < len(names) for c in classes):
            classes = [names[int(c)] for c in classes]
    return classification_task(
        folder.name, texts, labels, test_texts, test_labels, classes, n_train, n_val, n_test, seed
    )


def qa_task(name: str, pairs: list[tuple[str, str]], n_train: int, n_val: int) -> Task:
    """A question-answering task from (question, answer) pairs: the first n_train train, the
    next n_val validate, the rest test."""
    if n_train < 1 or n_val < 1 or len(pairs) < n_train + n_val + 1:
        raise ValidationError(
            f"task {name} has {len(pairs)} question/answer pairs; need at least one each for "
            f"train, validation and test (asked for {n_train} train and {n_val} validation)"
        )
    for question, answer in pairs:
        if not question.strip() or not answer.strip() or ANSWER_END in answer:
            raise ValidationError(
                f"task {name}: every question and answer must be non-empty and answers one "
                f"line; got {question!r} → {answer!r}"
            )

    def split(rows: list[tuple[str, str]]) -> Split:
        return Split([f"{q}\nanswer: " for q, _ in rows], [a + ANSWER_END for _, a in rows])

    return Task(
        name,
        "qa",
        split(pairs[:n_train]),
        split(pairs[n_train : n_train + n_val]),
        split(pairs[n_train + n_val :]),
    )


def _read_qa_csv(path: Path) -> list[tuple[str, str]]:
    frame = read_text_csv(path, ("question", "answer"), "question-answering file")
    pairs = list(zip(frame["question"].astype(str), frame["answer"].astype(str).str.strip()))
    empty = [i for i, (q, a) in enumerate(pairs) if not q.strip() or not a]
    if empty:
        raise ValidationError(
            f"{path} has {len(empty)} empty question(s) or answer(s) (first at data row "
            f"{empty[0] + 1}); drop or fill them"
        )
    return pairs


def load_task_csv(
    train_path: str | os.PathLike,
    test_path: str | os.PathLike | None = None,
    max_train: int | None = 512,
    n_val: int = 128,
    seed: int = 0,
) -> Task:
    """A task from the user's CSV files: columns `text,label` (classification) or
    `question,answer` (QA). Validation examples are held out of TRAIN; without a test file,
    test examples are too."""
    train_path = Path(train_path)
    if not train_path.is_file():
        raise DataNotFoundError(f"task file {train_path} not found")
    columns = csv_columns(train_path)
    name = train_path.stem
    if {"text", "label"} <= set(columns):
        texts, raw = load_classification_csv(train_path)
        test_texts = test_raw = None
        if test_path is not None:
            test_texts, test_raw = load_classification_csv(test_path)
        classes, labels, test_labels = encode_labels(raw, test_raw, str(train_path))
        n_val = min(n_val, max(1, len(texts) // 5))
        return classification_task(
            name, texts, labels, test_texts, test_labels, classes, max_train, n_val, None, seed
        )
    if {"question", "answer"} <= set(columns):
        pairs = _read_qa_csv(train_path)
        rng = np.random.default_rng(seed)
        pairs = [pairs[i] for i in rng.permutation(len(pairs))]
        if test_path is not None:
            test_pairs = _read_qa_csv(Path(test_path))
            n_val = min(n_val, max(1, len(pairs) // 5))
            train = pairs[n_val:][: max_train or None]
            return qa_task(name, train + pairs[:n_val] + test_pairs, len(train), n_val)
        n_val = min(n_val, max(1, len(pairs) // 5))
        n_train = min(max_train or len(pairs), len(pairs) - 2 * n_val)
        return qa_task(name, pairs, n_train, n_val)
    raise ValidationError(
        f"{train_path} has columns {columns}; a task file needs text,label (classification) "
        "or question,answer (question answering)"
    )
