"""Compress a language model by searching a weight-sharing super-network (arXiv:2410.06479).

Every smaller architecture inside a trained GPT (fewer layers, heads, MLP neurons, embedding
channels) is a sub-network that shares the parent's weights (`SubNetwork`, `SearchSpace`,
`SuperNetwork`); `extract` turns any of them into a stand-alone dense GPT.
"""

from autofm.compress.extract import extract, sub_config
from autofm.compress.space import (
    SPACES,
    CalibratedSampler,
    SearchSpace,
    SubNetwork,
    count_flops,
    count_parameters,
)
from autofm.compress.supernet import SuperNetwork

__all__ = [
    "SPACES",
    "CalibratedSampler",
    "SearchSpace",
    "SubNetwork",
    "SuperNetwork",
    "count_flops",
    "count_parameters",
    "extract",
    "sub_config",
]
