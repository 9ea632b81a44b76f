"""Synthetic tasks GAMformer is trained on, and an additive prior with known shape functions.

* `sample_scm_task`: a random MLP structural causal model (as in TabPFN's prior): random causes
  pass through a random sparse MLP with noise; features and the target are random nodes of it.
* `sample_gp_task`: a draw from a Gaussian process (random Fourier features, ARD RBF kernel).
* `sample_additive_task`: y depends on x only through random 1-D shape functions (smooth, steps,
  monotone or zero) and a logistic (or identity) link; returns each row's true contributions.

Classification targets are cut from the continuous target at random quantiles into 2–10 classes
whose labels are then permuted. Some features are made categorical (a few values in random order),
and some tasks get missing values. Like real tables, tasks may also carry binary columns, one-hot
encoded categorical variables (one variable expanded into several 0/1 columns) and irrelevant
columns (a feature shuffled across rows, so it keeps its marginal but loses its signal), and some
batches are wide (more features, fewer rows). `GAMPrior` mixes them into `TaskBatch`es for
`autofm.pfn.train`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from autofm.pfn.prior import TaskBatch

ACTIVATIONS = {
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0.0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.1 * z),
    "sin": np.sin,
    "abs": np.abs,
    "square": lambda z: np.clip(z, -3, 3) ** 2,
    "identity": lambda z: z,
}


def _standardise(values: np.ndarray) -> np.ndarray:
    std = values.std(axis=0)
    return (values - values.mean(axis=0)) / np.where(std > 1e-12, std, 1.0)


def _to_classes(
    target: np.ndarray,
    n_classes: int,
    rng: np.random.Generator,
    minority_share: float | None = None,
) -> np.ndarray:
    """Cut a continuous target at random quantiles into n_classes labels in random order.

    With `minority_share` (binary only) the rarer class is that share of the rows, taken from
    the upper or the lower tail of the target.
    """
    if minority_share is not None and n_classes == 2:
        upper_tail = rng.random() < 0.5
        share = 1.0 - minority_share if upper_tail else minority_share
        labels = (target > np.quantile(target, share)).astype(int)
        return rng.permutation(2)[labels]
    proportions = rng.dirichlet(np.full(n_classes, 2.0))
    proportions = np.maximum(proportions, 0.3 / n_classes)
    cuts = np.cumsum(proportions / proportions.sum())[:-1]
    thresholds = np.quantile(target, cuts)
    labels = np.searchsorted(thresholds, target, side="right")
    return rng.permutation(n_classes)[labels]


def _make_categorical(x: np.ndarray, rng: np.random.Generator, probability: float) -> np.ndarray:
    """Replace some columns by 2–10 categories (quantile cuts) numbered in random order."""
    x = x.copy()
    for j in range(x.shape[1]):
        if rng.random() < probability:
            n_categories = int(rng.integers(2, 11))
            cuts = np.quantile(x[:, j], np.sort(rng.random(n_categories - 1)))
            codes = np.searchsorted(cuts, x[:, j])
            x[:, j] = rng.permutation(n_categories)[codes]
    return x


def encode_columns(
    x: np.ndarray,
    n_out: int,
    rng: np.random.Generator,
    binary_rate: float = 0.0,
    onehot_rate: float = 0.0,
    irrelevant_rate: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """n_out columns made from the leading columns of x, as a real table would encode them.

    Each source column in turn becomes, with probability `onehot_rate`, a categorical variable of
    3–8 levels (cut at random quantiles) written as one 0/1 column per level (the first level
    dropped half of the time, as drop-first encoders do); with probability `binary_rate` one 0/1
    column (cut at a random quantile); otherwise it is kept. With probability `irrelevant_rate`
    the source column is first shuffled across rows (all of its output columns together).
    Returns the columns [rows, n_out] and, per output column, its kind (0 kept, 1 binary,
    2 one-hot, plus 3 when irrelevant). Needs x.shape[1] ≥ n_out.
    """
    columns, kinds = [], []
    for j in range(x.shape[1]):
        if len(columns) >= n_out:
            break
        source = x[:, j]
        irrelevant = rng.random() < irrelevant_rate
        if irrelevant:
            source = source[rng.permutation(len(source))]
        draw = rng.random()
        if draw < onehot_rate:
            n_levels = int(rng.integers(3, 9))
            proportions = np.maximum(rng.dirichlet(np.full(n_levels, 1.5)), 0.02)
            cuts = np.quantile(source, np.cumsum(proportions / proportions.sum())[:-1])
            codes = rng.permutation(n_levels)[np.searchsorted(cuts, source)]
            levels = range(int(rng.random() < 0.5), n_levels)
            new = [(codes == level).astype(float) for level in levels]
            kind = 2
        elif draw < onehot_rate + binary_rate:
            new = [(source > np.quantile(source, rng.uniform(0.05, 0.95))).astype(float)]
            kind = 1
        else:
            new, kind = [source], 0
        columns.extend(new)
        kinds.extend([kind + 3 * irrelevant] * len(new))
    return np.stack(columns[:n_out], axis=1), np.asarray(kinds[:n_out])


def sample_causes(n_rows: int, n_causes: int, rng: np.random.Generator) -> np.ndarray:
    """Independent root causes, each normal or uniform with a random scale."""
    normal = rng.normal(size=(n_rows, n_causes))
    uniform = rng.uniform(-1.7, 1.7, size=(n_rows, n_causes))
    use_normal = rng.random(n_causes) < 0.5
    return np.where(use_normal, normal, uniform) * rng.uniform(0.5, 1.5, size=n_causes)


def sample_scm_task(
    n_rows: int, n_features: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(x [n_rows, n_features], continuous target [n_rows]) from a random MLP SCM."""
    n_layers = int(rng.integers(1, 5))
    width = int(rng.integers(max(8, n_features + 2), max(33, n_features + 3)))
    activation = ACTIVATIONS[rng.choice(list(ACTIVATIONS))]
    noise_std = float(np.exp(rng.uniform(np.log(0.01), np.log(0.3))))
    keep = rng.uniform(0.3, 1.0)  # edge density of the causal graph
    h = sample_causes(n_rows, width, rng)
    nodes = []
    for _ in range(n_layers):
        weights = rng.normal(size=(h.shape[1], width)) / np.sqrt(h.shape[1] * keep)
        weights *= rng.random(weights.shape) < keep
        h = activation(h @ weights + rng.normal(scale=noise_std, size=(n_rows, width)))
        h = _standardise(h)
        nodes.append(h)
    candidates = np.concatenate(nodes, axis=1)
    varying = np.flatnonzero(candidates.std(axis=0) > 1e-6)
    if varying.size < n_features + 1:  # degenerate graph: fall back to fresh causes
        candidates = np.concatenate([candidates, sample_causes(n_rows, n_features + 1, rng)], 1)
        varying = np.flatnonzero(candidates.std(axis=0) > 1e-6)
    chosen = rng.choice(varying, size=n_features + 1, replace=False)
    return candidates[:, chosen[1:]], candidates[:, chosen[0]]


def sample_gp_task(
    n_rows: int, n_features: int, rng: np.random.Generator, n_frequencies: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """(x, continuous target) with the target a GP draw (ARD RBF kernel via random features)."""
    x = sample_causes(n_rows, n_features, rng)
    lengthscales = np.exp(rng.uniform(np.log(0.3), np.log(3.0), size=n_features))
    frequencies = rng.normal(size=(n_features, n_frequencies)) / lengthscales[:, None]
    phases = rng.uniform(0, 2 * np.pi, size=n_frequencies)
    amplitudes = rng.normal(size=n_frequencies) * np.sqrt(2.0 / n_frequencies)
    target = np.cos(x @ frequencies + phases) @ amplitudes
    return x, target + rng.normal(scale=0.1 * target.std() + 1e-6, size=n_rows)


@dataclass
class ShapeFunction:
    """One random 1-D function of a standardised feature: smooth, step, monotone or zero."""

    kind: str
    parameters: dict

    def __call__(self, z: np.ndarray) -> np.ndarray:
        p = self.parameters
        if self.kind == "smooth":
            return np.cos(np.outer(z, p["frequencies"]) + p["phases"]) @ p["amplitudes"]
        if self.kind == "step":
            return p["levels"][np.searchsorted(p["jumps"], z)]
        if self.kind == "monotone":
            return np.tanh(p["slope"] * (z - p["center"]))
        return np.zeros_like(z, dtype=float)


SHAPE_KINDS = ("smooth", "step", "monotone", "zero")


def random_shape_function(
    rng: np.random.Generator, kind_weights: tuple[float, ...] | None = None
) -> ShapeFunction:
    """A random shape function: smooth (sums of 1–3 cosines), step, monotone (tanh) or zero (an
    irrelevant feature), in proportions 2 : 1 : 2 : 1, or `kind_weights` in SHAPE_KINDS order."""
    if kind_weights is None:  # the default draw (kept as it was: seeded tasks stay the same)
        kind = rng.choice(["smooth", "smooth", "step", "monotone", "monotone", "zero"])
    else:
        weights = np.asarray(kind_weights, float)
        kind = rng.choice(SHAPE_KINDS, p=weights / weights.sum())
    if kind == "smooth":
        n = int(rng.integers(1, 4))
        parameters = {
            "frequencies": rng.normal(size=n) * rng.uniform(0.5, 2.5),
            "phases": rng.uniform(0, 2 * np.pi, size=n),
            "amplitudes": rng.normal(size=n),
        }
    elif kind == "step":
        n = int(rng.integers(1, 4))
        parameters = {"jumps": np.sort(rng.normal(size=n)), "levels": rng.normal(size=n + 1)}
    elif kind == "monotone":
        parameters = {"slope": rng.choice([-1, 1]) * rng.uniform(0.3, 3.0), "center": rng.normal()}
    else:
        parameters = {}
    return ShapeFunction(str(kind), parameters)


@dataclass
class AdditiveTask:
    """A task of the additive prior and its truth: contributions[i, j] = f_j(x_ij) (centred)."""

    x: np.ndarray
    y: np.ndarray
    contributions: np.ndarray
    shape_functions: list[ShapeFunction]
    feature_means: np.ndarray
    feature_stds: np.ndarray
    scales: np.ndarray
    offsets: np.ndarray

    def true_shape(self, feature: int, values: np.ndarray) -> np.ndarray:
        """The true (centred) contribution of `feature` at raw `values`."""
        z = (np.asarray(values, float) - self.feature_means[feature]) / self.feature_stds[feature]
        f = self.shape_functions[feature]
        return self.scales[feature] * f(z) - self.offsets[feature]


def intercept_for_rate(logit: np.ndarray, rate: float) -> float:
    """The b for which the mean of sigmoid(logit + b) is `rate` (bisection; 0 < rate < 1)."""
    low, high = -40.0, 40.0
    for _ in range(60):
        middle = (low + high) / 2
        if np.mean(1 / (1 + np.exp(-(logit + middle)))) < rate:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def sample_additive_task(
    n_rows: int,
    n_features: int,
    rng: np.random.Generator,
    regression: bool = False,
    signal: float | None = None,
    binary_rate: float = 0.0,
    onehot_rate: float = 0.0,
    positive_rate: float | None = None,
    kind_weights: tuple[float, ...] | None = None,
) -> AdditiveTask:
    """x with mixed marginals; binary y ~ Bernoulli(sigmoid(Σ f_j(x_j) + b)) or y = Σ f_j + noise.

    With `binary_rate`/`onehot_rate` some columns are 0/1 (see `encode_columns`); the model stays
    additive in the columns as given (a one-hot variable's effect is a sum over its columns).
    The intercept b puts the expected share of positives at `positive_rate` when given, else
    cuts the logits at a random quantile in [0.25, 0.75]. `kind_weights`: the mix of shape
    function kinds (`random_shape_function`).
    """
    raw = sample_causes(n_rows, n_features, rng)
    skewed = rng.random(n_features) < 0.3
    raw[:, skewed] = np.exp(raw[:, skewed])
    discrete = rng.random(n_features) < 0.15
    raw[:, discrete] = np.round(raw[:, discrete] * rng.uniform(1, 3))
    if binary_rate or onehot_rate:
        raw, _ = encode_columns(raw, n_features, rng, binary_rate, onehot_rate)
    means, stds = raw.mean(axis=0), raw.std(axis=0)
    stds = np.where(stds > 1e-12, stds, 1.0)
    z = (raw - means) / stds
    functions = [random_shape_function(rng, kind_weights) for _ in range(n_features)]
    values = np.stack([f(z[:, j]) for j, f in enumerate(functions)], axis=1)
    value_std = values.std(axis=0)
    importance = np.exp(rng.normal(scale=0.7, size=n_features))
    scales = np.where(value_std > 1e-9, importance / np.where(value_std > 1e-9, value_std, 1), 0)
    total_std = np.sqrt(np.sum((scales * value_std) ** 2)) or 1.0
    signal = signal if signal is not None else float(rng.uniform(1.0, 4.0))
    scales = scales * signal / total_std
    values = values * scales
    offsets = values.mean(axis=0)
    contributions = values - offsets
    logit = contributions.sum(axis=1)
    if regression:
        y = logit + rng.normal(scale=rng.uniform(0.1, 0.5) * signal, size=n_rows)
    else:
        if positive_rate is None:
            intercept = -np.quantile(logit, rng.uniform(0.25, 0.75))
        else:
            intercept = intercept_for_rate(logit, positive_rate)
        y = (rng.random(n_rows) < 1 / (1 + np.exp(-(logit + intercept)))).astype(float)
    return AdditiveTask(raw, y, contributions, functions, means, stds, scales, offsets)


@dataclass
class GAMPrior:
    """The training prior: a mix of SCM, GP and additive tasks (see module docstring).

    `sample` draws one number of features in [min_features, n_features] per batch (with
    probability `wide_fraction` instead in (n_features, max_wide_features], and then at most
    max(`min_wide_rows`, `wide_token_budget` / features) context rows, so that rows × features
    per task stays bounded) and one task kind per task; with probability `regression_fraction` a
    whole batch is regression. With probability `encoded_probability` a task gets binary and
    one-hot columns at per-column rates drawn up to `binary_rate`/`onehot_rate`; with probability
    `irrelevant_probability` an SCM/GP task gets irrelevant (shuffled) columns at a rate drawn up
    to `irrelevant_rate` (additive tasks have zero shape functions for that). With probability
    `rare_class_probability` a binary task gets a rare class: its share drawn log-uniformly
    between max(`min_minority_share`, `min_minority_rows` / context rows) and
    `max_rare_share`, so that the context still holds a few of its rows on average.
    `shape_kind_weights` sets the additive tasks' mix of shape kinds (None: the default mix of
    `random_shape_function`).
    Metadata: `regression` (bool), `n_classes` [B], `kind` (list of str) and, for additive
    tasks, `contributions` [B, N + M, F] (zeros for the other tasks; `is_additive` [B] marks them).
    """

    scm_weight: float = 0.96
    gp_weight: float = 0.04
    additive_weight: float = 0.0
    max_classes: int = 10
    regression_fraction: float = 0.0
    categorical_probability: float = 0.3
    missing_probability: float = 0.1
    min_features: int = 1
    wide_fraction: float = 0.0
    max_wide_features: int = 60
    wide_token_budget: int = 2560
    min_wide_rows: int = 40
    encoded_probability: float = 0.0
    binary_rate: float = 0.6
    onehot_rate: float = 0.5
    irrelevant_probability: float = 0.0
    irrelevant_rate: float = 0.6
    rare_class_probability: float = 0.0
    min_minority_share: float = 0.01
    min_minority_rows: int = 3
    max_rare_share: float = 0.15
    shape_kind_weights: tuple[float, ...] | None = None

    def sample(
        self,
        batch_size: int,
        n_context: int,
        n_query: int,
        n_features: int,
        generator: torch.Generator,
    ) -> TaskBatch:
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        rng = np.random.default_rng(seed)
        if rng.random() < self.wide_fraction and self.max_wide_features > n_features:
            features = int(rng.integers(n_features + 1, self.max_wide_features + 1))
            n_context = min(n_context, max(self.min_wide_rows, self.wide_token_budget // features))
        else:
            features = int(rng.integers(self.min_features, max(self.min_features, n_features) + 1))
        regression = bool(rng.random() < self.regression_fraction)
        n_rows = n_context + n_query
        weights = np.array([self.scm_weight, self.gp_weight, self.additive_weight], float)
        kinds = rng.choice(["scm", "gp", "additive"], size=batch_size, p=weights / weights.sum())
        lowest_share = max(self.min_minority_share, self.min_minority_rows / n_context)
        xs, ys, contributions, classes = [], [], [], []
        for kind in kinds:
            share = None
            if rng.random() < self.rare_class_probability and lowest_share < self.max_rare_share:
                share = float(
                    np.exp(rng.uniform(np.log(lowest_share), np.log(self.max_rare_share)))
                )
            x, y, truth, n_classes = self._task(str(kind), n_rows, features, regression, rng, share)
            xs.append(x)
            ys.append(y)
            contributions.append(truth)
            classes.append(n_classes)
        x = torch.tensor(np.stack(xs), dtype=torch.float32)
        y = torch.tensor(np.stack(ys), dtype=torch.float32)
        metadata = {
            "regression": regression,
            "n_classes": torch.tensor(classes),
            "kind": [str(k) for k in kinds],
            "is_additive": torch.tensor([k == "additive" for k in kinds]),
            "contributions": torch.tensor(np.stack(contributions), dtype=torch.float32),
        }
        return TaskBatch(
            x[:, :n_context], y[:, :n_context], x[:, n_context:], y[:, n_context:], metadata
        )

    def _task(
        self,
        kind: str,
        n_rows: int,
        n_features: int,
        regression: bool,
        rng: np.random.Generator,
        minority_share: float | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """(x, y, true contributions, classes) of one task; `minority_share` makes a binary
        classification task's rarer class that share of the rows."""
        truth = np.zeros((n_rows, n_features))
        encoded = rng.random() < self.encoded_probability
        binary_rate = rng.uniform(0, self.binary_rate) if encoded else 0.0
        onehot_rate = rng.uniform(0, self.onehot_rate) if encoded else 0.0
        if kind == "additive":
            task = sample_additive_task(
                n_rows,
                n_features,
                rng,
                regression=regression,
                binary_rate=binary_rate,
                onehot_rate=onehot_rate,
                positive_rate=minority_share,
                kind_weights=self.shape_kind_weights,
            )
            x, y, truth, n_classes = task.x, task.y, task.contributions, 2
        else:
            sampler = sample_scm_task if kind == "scm" else sample_gp_task
            x, target = sampler(n_rows, n_features, rng)
            if rng.random() < 0.5:
                x = _make_categorical(x, rng, self.categorical_probability)
            irrelevant = rng.random() < self.irrelevant_probability
            irrelevant_rate = rng.uniform(0, self.irrelevant_rate) if irrelevant else 0.0
            if encoded or irrelevant:
                x, _ = encode_columns(x, n_features, rng, binary_rate, onehot_rate, irrelevant_rate)
            if regression:
                y, n_classes = target, 1
            else:
                if minority_share is not None:
                    n_classes = 2
                elif rng.random() < 0.5:
                    n_classes = int(rng.integers(2, self.max_classes + 1))
                else:
                    n_classes = 2
                y = _to_classes(target, n_classes, rng, minority_share).astype(float)
        if rng.random() < self.missing_probability:
            column = int(rng.integers(n_features))
            x = x.copy()
            x[rng.random(n_rows) < rng.uniform(0.05, 0.3), column] = np.nan
        return x, y, truth, n_classes

    def __repr__(self) -> str:
        return (
            f"GAMPrior(scm={self.scm_weight}, gp={self.gp_weight}, "
            f"additive={self.additive_weight}, regression_fraction={self.regression_fraction}, "
            f"wide_fraction={self.wide_fraction}, max_wide_features={self.max_wide_features}, "
            f"encoded_probability={self.encoded_probability}, "
            f"irrelevant_probability={self.irrelevant_probability}, "
            f"rare_class_probability={self.rare_class_probability}, "
            f"wide_token_budget={self.wide_token_budget}, "
            f"shape_kind_weights={self.shape_kind_weights})"
        )
