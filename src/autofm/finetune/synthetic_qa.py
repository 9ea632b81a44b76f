"""Generated question-answering tasks of different domains and difficulty (as the paper's
synthetic QA meta-dataset): arithmetic word problems, lookups in a facts table given in the
question, date reasoning, string manipulation, and counting (kept out of the meta-dataset for
the live run). Answers are short single lines, scored by exact match.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from autofm.core.errors import ValidationError
from autofm.finetune.tasks import Task, qa_task

NAMES = ("Ann", "Bob", "Cy", "Dee", "Eve", "Fay", "Gus", "Hal", "Ida", "Jo", "Kim", "Lou")
ITEMS = ("apples", "pens", "cards", "coins", "books", "eggs")
PETS = ("cat", "dog", "fish", "bird", "frog", "rat")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


def random_word(rng: np.random.Generator) -> str:
    """A random lower-case word of 3 to 7 letters."""
    return "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), size=int(rng.integers(3, 8))))


def arithmetic(rng: np.random.Generator) -> tuple[str, str]:
    """Two-number word problems with + or −: `Ann has 12 pens and gets 7 more. How many?`"""
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    a, b = int(rng.integers(2, 60)), int(rng.integers(1, 40))
    if rng.random() < 0.5:
        return f"{name} has {a} {item} and gets {b} more. How many?", str(a + b)
    a = a + b
    return f"{name} has {a} {item} and gives away {b}. How many?", str(a - b)


def facts_lookup(rng: np.random.Generator) -> tuple[str, str]:
    """Look a value up in a small facts table given in the question."""
    people = rng.choice(NAMES, size=3, replace=False)
    pets = rng.choice(PETS, size=3, replace=False)
    ages = rng.integers(2, 15, size=3)
    table = "; ".join(f"{p}: {pet}, {age}" for p, pet, age in zip(people, pets, ages))
    who = int(rng.integers(3))
    if rng.random() < 0.5:
        return f"{table}. Pet of {people[who]}?", str(pets[who])
    return f"{table}. Age of {people[who]}?", str(ages[who])


def dates(rng: np.random.Generator) -> tuple[str, str]:
    """Weekday and month arithmetic: `3 days after Monday?` → Thursday, `2 months before May?`."""
    sign = 1 if rng.random() < 0.5 else -1
    direction = "after" if sign == 1 else "before"
    if rng.random() < 0.5:
        n, start = int(rng.integers(1, 31)), int(rng.integers(7))
        return f"{n} days {direction} {DAYS[start]}?", DAYS[(start + sign * n) % 7]
    n, start = int(rng.integers(1, 12)), int(rng.integers(12))
    return f"{n} months {direction} {MONTHS[start]}?", MONTHS[(start + sign * n) % 12]


def strings(rng: np.random.Generator) -> tuple[str, str]:
    """String manipulation: reverse, upper-case, first or last letters of a word."""
    word = random_word(rng)
    operation = int(rng.integers(4))
    if operation == 0:
        return f"Reverse: {word}", word[::-1]
    if operation == 1:
        return f"Upper case: {word}", word.upper()
    k = int(rng.integers(2, 4))
    if operation == 2:
        return f"First {k} letters of {word}?", word[:k]
    return f"Last {k} letters of {word}?", word[-k:]


def counting(rng: np.random.Generator) -> tuple[str, str]:
    """Count a letter in a word or the words in a list."""
    if rng.random() < 0.5:
        word = random_word(rng)
        letter = str(rng.choice(list(word)))
        return f"How many {letter} in {word}?", str(word.count(letter))
    n = int(rng.integers(1, 7))
    return f"How many words: {' '.join(random_word(rng) for _ in range(n))}?", str(n)


GENERATORS: dict[str, Callable[[np.random.Generator], tuple[str, str]]] = {
    "qa_arithmetic": arithmetic,
    "qa_facts": facts_lookup,
    "qa_dates": dates,
    "qa_strings": strings,
    "qa_counting": counting,
}


def synthetic_qa_task(
    name: str, n_train: int = 128, n_val: int = 128, n_test: int = 256, seed: int = 0
) -> Task:
    """A generated QA task; questions in test never appear in train or validation."""
    if name not in GENERATORS:
        raise ValidationError(f"unknown synthetic QA task {name!r}; known: {sorted(GENERATORS)}")
    rng = np.random.default_rng(seed)
    generate, pairs, seen = GENERATORS[name], [], set()
    total = n_train + n_val + n_test
    for _ in range(50 * total):
        question, answer = generate(rng)
        if question not in seen:
            seen.add(question)
            pairs.append((question, answer))
        if len(pairs) == total:
            break
    if len(pairs) < total:
        raise ValidationError(f"{name} cannot generate {total} distinct questions")
    return qa_task(name, pairs, n_train, n_val)
