"""Tour step: a tiny real meta-dataset (the shipped GPT finetuned with LoRA on three generated QA
tasks), a tuner meta-trained on it, and a budgeted search on a fourth task against the default
configuration."""

from __future__ import annotations

from pathlib import Path

from autofm.core.runtime import setup_torch
from autofm.core.tour import TourStep
from autofm.finetune.builder import BuildSpec, build_metadataset, load_task, metadataset_from_study
from autofm.finetune.report import tune_report
from autofm.finetune.tuning import meta_train, tune
from autofm.lm.checkpoint import load_gpt

TOUR_BUILD = BuildSpec(
    tasks=("qa_dates", "qa_strings", "qa_facts"),
    n_configs=4,
    max_epochs=2,
    n_train=16,
    n_val=16,
    n_test=16,
)


def step(workdir: Path, seed: int) -> TourStep:
    """Build a 3-task × 4-configuration meta-dataset, meta-train, then tune on qa_counting."""
    setup_torch(1)
    storage = workdir / "finetune-build"
    build_metadataset(storage, TOUR_BUILD)
    metadataset = metadataset_from_study(storage)
    metadataset.save(workdir / "finetune-metadataset")
    tuner = meta_train(metadataset, seed, {"n_iterations": 30}, {"n_iterations": 100})
    model = load_gpt(TOUR_BUILD.model)[0].float()
    task = load_task("qa_counting", TOUR_BUILD)
    budget = 3 * float(metadataset.costs[metadataset.complete()].sum(axis=1).mean())
    ours = tune(model, task, budget, "quicktune", tuner, seed=seed, show_progress=False)
    default = tune(model, task, budget, "default", seed=seed, show_progress=False)
    report = tune_report(ours, task.name, default_test=default.test_score)
    summary = (
        f"{int(metadataset.complete().sum())} finetuning runs; on qa_counting in {budget:.1f} s: "
        f"tuned exact match {ours.test_score:.3f} vs default {default.test_score:.3f}"
    )
    metrics = {
        "runs": int(metadataset.complete().sum()),
        "tuned_test_exact_match": ours.test_score,
        "default_test_exact_match": default.test_score,
        "configurations_tried": len(ours.runs),
    }
    return TourStep("finetune", summary, metrics, report)
