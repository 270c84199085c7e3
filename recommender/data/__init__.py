"""Data: the catalogue and interaction containers (``catalog``), loaders for MovieLens,
RecBole atomic files and generic CSV/JSONL (``loaders``), the leave-one-out split (``split``)
and title lookup in a catalogue (``titles``). Pure: numpy only, no models.
"""

from recommender.data.catalog import Catalog, DataError, Dataset, Interactions, Item, LoadReport, build_interactions

__all__ = ["Catalog", "DataError", "Dataset", "Interactions", "Item", "LoadReport", "build_interactions"]
