"""autofm: AutoML research systems as installable, tested, benchmarked software."""

__version__ = "0.1.0"
