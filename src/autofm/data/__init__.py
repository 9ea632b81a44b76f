"""Loaders and containers: tables, time series in long format, text corpora."""

from autofm.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    "autofm.data",
    {
        "tables": ["load_openml", "load_sklearn", "load_table", "read_arff", "read_table"],
        "text": ["decode", "encode", "load_text", "sample_blocks", "stdlib_corpus"],
        "timeseries": [
            "infer_freq",
            "load_timeseries_folder",
            "season_length",
            "statsmodels_series",
            "train_test_split",
            "validate_long",
        ],
    },
)
