"""Loaders and containers: tables, time series in long format, text corpora."""

from autofm.data.tables import load_openml, load_sklearn, load_table, read_arff, read_table
from autofm.data.text import decode, encode, load_text, sample_blocks, stdlib_corpus
from autofm.data.timeseries import (
    infer_freq,
    load_timeseries_folder,
    season_length,
    statsmodels_series,
    train_test_split,
    validate_long,
)

__all__ = [
    "decode",
    "encode",
    "infer_freq",
    "load_openml",
    "load_sklearn",
    "load_table",
    "load_text",
    "load_timeseries_folder",
    "read_arff",
    "read_table",
    "sample_blocks",
    "season_length",
    "statsmodels_series",
    "stdlib_corpus",
    "train_test_split",
    "validate_long",
]
