"""Compress a language model by searching a weight-sharing super-network (arXiv:2410.06479).

Every smaller architecture inside a trained GPT (fewer layers, heads, MLP neurons, embedding
channels) is a sub-network that shares the parent's weights (`SubNetwork`, `SearchSpace`,
`SuperNetwork`); importance sorting makes each of them a prefix slice of the most important
units (`sort_parent`); super-network training makes them work (`train_supernet`); `extract`
turns any of them into a stand-alone dense GPT; `baselines` are the pruning methods compared.
"""

from autofm.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    "autofm.compress",
    {
        "baselines": [
            "PRUNE_METHODS",
            "from_scratch",
            "importance_prune",
            "leading_prune",
            "magnitude_prune",
            "prune",
            "recover",
            "shrink_factor_for",
            "uniform_shrink",
        ],
        "extraction": ["extract", "sub_config"],
        "importance": [
            "AGGREGATIONS",
            "UnitScores",
            "block_importance",
            "calibration_batches",
            "permute_by_importance",
            "sort_parent",
            "unit_importance",
        ],
        "objectives": [
            "Calibration",
            "Evaluator",
            "kl_to_parent",
            "measure_latency",
            "validation_loss",
        ],
        "parent": ["load_supernet", "parse_model_spec", "save_supernet"],
        "subnet_search": ["METHODS", "SearchResult", "load_result", "search"],
        "space": [
            "SPACES",
            "CalibratedSampler",
            "SearchSpace",
            "SubNetwork",
            "count_flops",
            "count_parameters",
        ],
        "supernet": ["SuperNetwork"],
        "training": ["STRATEGIES", "SupernetTrainConfig", "train_supernet"],
        "hf_supernet": ["LlamaShape", "LlamaSuperNetwork", "llama_importance", "sort_llama"],
        "hf_extract": ["extract_llama", "llama_sub_config", "load_hf_parent", "save_hf_supernet"],
    },
)
