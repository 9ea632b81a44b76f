"""Prior-fitted networks (PFNs) and exact Bayesian posteriors: priors whose posterior predictive
is known, the PFN transformer, the shipped PFNs and the experiments that compare the two
("in-context learning approximates the posterior", arXiv:2410.01565).

The prior protocol, the training loop and the bar distribution that PFNs share with GAMformer and
Mamba4Cast live in `autofm.pfn`."""

from autofm.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    "autofm.icl",
    {
        "pretrained": ["RECIPES", "load_pfn", "train_pfn"],
        "priors": [
            "PRIORS",
            "CountingPrior",
            "GPPrior",
            "GridPrior",
            "PhaseSinePrior",
            "SineLinePrior",
            "StepPrior",
        ],
        "transformer": ["PFN", "PFNConfig", "PFNPrediction"],
    },
)
