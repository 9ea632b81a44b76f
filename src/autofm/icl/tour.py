"""The ICL tour step: the shipped PFNs against the exact posteriors of their priors."""

from __future__ import annotations

from pathlib import Path

from autofm.core.report import Report
from autofm.core.tour import TourStep
from autofm.icl.experiments import run_all
from autofm.icl.pretrained import RECIPES, load_pfn


def step(workdir: Path, seed: int) -> TourStep:
    """Run the four experiments at small scale with the shipped checkpoints."""
    models = {name: load_pfn(name)[0] for name in RECIPES}
    report = Report("icl: prior-fitted networks vs exact Bayesian posteriors")
    report.text(
        "Each PFN was trained only on draws from its prior. The exact posterior predictive (PPD) "
        "of that prior is computed in closed form (a finite grid of latent functions, or a GP); "
        "a well-trained PFN should match it, also on data the prior finds unlikely."
    )
    results = run_all(models, seed=seed, quick=True, report=report)
    steps = results["steps_on_linear"]
    gp = results["gp"]["in_distribution"]
    counting = results["counting"]
    sines = results["sines_and_lines"]["by_context"]
    metrics = {
        "steps_on_linear_max_abs_mean_diff": steps["max_abs_mean_diff"],
        "gp_nll_gap": gp["nll_gap"],
        "counting_max_abs_diff": counting["max_abs_mean_diff"],
        "sine_line_p_sine_at_80": sines[-1]["p_sine_exact"],
    }
    summary = (
        f"steps→linear max|PFN−PPD| {steps['max_abs_mean_diff']:.3f}, GP NLL gap "
        f"{gp['nll_gap']:.3f} nats, counting max|Δp| {counting['max_abs_mean_diff']:.3f}, "
        f"sines+lines P(sine | 80 pts) {sines[-1]['p_sine_exact']:.2f}"
    )
    return TourStep("icl", summary, metrics, report)
