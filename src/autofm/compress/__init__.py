"""Compress a language model by searching a weight-sharing super-network (arXiv:2410.06479).

Every smaller architecture inside a trained GPT (fewer layers, heads, MLP neurons, embedding
channels) is a sub-network that shares the parent's weights (`SubNetwork`, `SearchSpace`,
`SuperNetwork`); importance sorting makes each of them a prefix slice of the most important
units (`sort_parent`); super-network training makes them work (`train_supernet`); `extract`
turns any of them into a stand-alone dense GPT; `baselines` are the pruning methods compared.
"""

from autofm.compress.baselines import (
    PRUNE_METHODS,
    from_scratch,
    importance_prune,
    leading_prune,
    magnitude_prune,
    prune,
    recover,
    shrink_factor_for,
    uniform_shrink,
)
from autofm.compress.extract import extract, sub_config
from autofm.compress.importance import (
    AGGREGATIONS,
    UnitScores,
    block_importance,
    calibration_batches,
    permute_by_importance,
    sort_parent,
    unit_importance,
)
from autofm.compress.objectives import (
    Calibration,
    Evaluator,
    kl_to_parent,
    measure_latency,
    validation_loss,
)
from autofm.compress.parent import load_supernet, parse_model_spec, save_supernet
from autofm.compress.search import METHODS, SearchResult, load_result, search
from autofm.compress.space import (
    SPACES,
    CalibratedSampler,
    SearchSpace,
    SubNetwork,
    count_flops,
    count_parameters,
)
from autofm.compress.supernet import SuperNetwork
from autofm.compress.training import STRATEGIES, SupernetTrainConfig, train_supernet

# the Hugging Face path imports transformers (seconds): loaded on first use only
_HF_EXPORTS = {
    "LlamaShape": "hf_supernet",
    "LlamaSuperNetwork": "hf_supernet",
    "llama_importance": "hf_supernet",
    "sort_llama": "hf_supernet",
    "extract_llama": "hf_extract",
    "llama_sub_config": "hf_extract",
    "load_hf_parent": "hf_extract",
    "save_hf_supernet": "hf_extract",
}


def __getattr__(name: str):
    if name not in _HF_EXPORTS:
        raise AttributeError(f"module 'autofm.compress' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"autofm.compress.{_HF_EXPORTS[name]}"), name)


__all__ = [
    "AGGREGATIONS",
    "METHODS",
    "Calibration",
    "Evaluator",
    "SearchResult",
    "kl_to_parent",
    "load_result",
    "measure_latency",
    "search",
    "validation_loss",
    "PRUNE_METHODS",
    "SPACES",
    "STRATEGIES",
    "SupernetTrainConfig",
    "UnitScores",
    "block_importance",
    "calibration_batches",
    "from_scratch",
    "importance_prune",
    "leading_prune",
    "load_supernet",
    "magnitude_prune",
    "parse_model_spec",
    "permute_by_importance",
    "prune",
    "recover",
    "save_supernet",
    "shrink_factor_for",
    "sort_parent",
    "train_supernet",
    "uniform_shrink",
    "unit_importance",
    "CalibratedSampler",
    "SearchSpace",
    "SubNetwork",
    "SuperNetwork",
    "count_flops",
    "count_parameters",
    "extract",
    "sub_config",
]
