"""LLM-prompted conversational recommender.

Importing this package loads no model and no torch; heavy modules import on first use.
"""

from recommender.data import Catalog, DataError, Dataset, Interactions, Item
from recommender.data.loaders import ColumnMap, load_dataset, load_generic
from recommender.data.split import EvalCase, LeaveOneOutSplit

__all__ = [
    "Catalog",
    "ColumnMap",
    "DataError",
    "Dataset",
    "EvalCase",
    "Interactions",
    "Item",
    "LeaveOneOutSplit",
    "load_dataset",
    "load_generic",
]
__version__ = "0.1.0"
