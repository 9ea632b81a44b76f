"""Shape recovery per kind of true shape function: where GAMformer's recovery score is lost.

    python -m benchmarks.gam_recovery_kinds [--tasks 40] [--seed 20000] [--checkpoints A B ...]

Additive tasks drawn like `benchmarks.gam.recovery_benchmark`'s (300 rows, 6 features, binary
labels, logit spread 3) but from seed `seed` on (the benchmark's own tasks start at 10,000, rule
C of `benchmarks.gam_acceptance` uses 30,000+). For every feature whose true contribution has a
standard deviation ≥ MIN_STD: the Pearson correlation of fitted and true contributions, and the
ratio of their standard deviations, grouped by the true shape's kind (monotone, step, or a sum
of cosines split by its largest |frequency| in units of the feature's standard deviation).
GAMformer (default settings, each checkpoint) and EBM (interactions=0, max_bins=64).
Writes benchmarks/results/gam.recovery_kinds.{json,md}.
"""

from __future__ import annotations

import argparse
import warnings
from collections import defaultdict

import numpy as np
import torch

from autofm.gam import GAMformerClassifier
from autofm.gam.estimators import DEFAULT_CHECKPOINT
from autofm.gam.metrics import per_feature_recovery, recovery_score
from autofm.gam.priors import ShapeFunction, sample_additive_task
from benchmarks.common import markdown_table, save_results

MIN_STD = 0.3


def kind_of(shape: ShapeFunction) -> str:
    if shape.kind != "smooth":
        return shape.kind
    frequency = float(np.max(np.abs(shape.parameters["frequencies"])))
    return "smooth, frequency " + ("< 1" if frequency < 1 else "1–2" if frequency < 2 else "> 2")


def contributions(model, x) -> np.ndarray:
    if isinstance(model, GAMformerClassifier):
        return next(iter(model.explain(x)["contributions"].values())).to_numpy()
    return model.eval_terms(x)


def main(argv: list[str] | None = None) -> None:
    from interpret.glassbox import ExplainableBoostingClassifier

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--seed", type=int, default=20_000)
    parser.add_argument("--checkpoints", nargs="+", default=[DEFAULT_CHECKPOINT])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    names = [*args.checkpoints, "ebm"]
    per_kind = defaultdict(lambda: defaultdict(lambda: {"corr": [], "std_ratio": []}))
    overall = defaultdict(list)
    for index in range(args.tasks):
        task = sample_additive_task(400, 6, np.random.default_rng(args.seed + index), signal=3.0)
        x, truth, y = task.x[:300], task.contributions[:300], task.y[:300]
        for name in names:
            if name == "ebm":
                model = ExplainableBoostingClassifier(
                    interactions=0, max_bins=64, n_jobs=1, random_state=index
                )
            else:
                model = GAMformerClassifier(checkpoint=name)
            fitted = contributions(model.fit(x, y), x)
            overall[name].append(recovery_score(fitted, truth))
            correlations = per_feature_recovery(fitted, truth)
            for j, shape in enumerate(task.shape_functions):
                if np.isnan(correlations[j]) or truth[:, j].std() < MIN_STD:
                    continue
                cell = per_kind[kind_of(shape)][name]
                cell["corr"].append(float(correlations[j]))
                cell["std_ratio"].append(float(fitted[:, j].std() / truth[:, j].std()))
    rows = []
    for kind in sorted(per_kind):
        row = {"true shape": kind, "features": len(per_kind[kind][names[0]]["corr"])}
        for name in names:
            cell = per_kind[kind][name]
            row[f"corr {name}"] = float(np.mean(cell["corr"]))
            row[f"std ratio {name}"] = float(np.median(cell["std_ratio"]))
        rows.append(row)
    means = {name: float(np.mean(values)) for name, values in overall.items()}
    text = (
        f"## Shape recovery by true shape kind ({args.tasks} tasks, seeds {args.seed}+)\n\n"
        + markdown_table(rows)
        + "\n\nMean recovery score: "
        + ", ".join(f"{name} {value:.3f}" for name, value in means.items())
        + "\n"
    )
    save_results(
        "gam.recovery_kinds",
        {"rows": rows, "recovery_mean": means, "tasks": args.tasks},
        text,
        [args.seed],
    )
    print(text)


if __name__ == "__main__":
    main()
