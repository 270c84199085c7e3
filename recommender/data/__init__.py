"""Data: the catalogue and interaction containers (``catalog``: users as integer codes plus
a vocabulary), loaders for MovieLens, RecBole atomic files and generic CSV/JSONL (``loaders``;
interaction files are parsed column-wise by pyarrow in ``columnar``, with line-numbered errors),
the vectorised leave-one-out split (``split``) and title lookup in a catalogue (``titles``).
Pure: numpy and pyarrow, no models.
"""

from recommender.data.catalog import Catalog, DataError, Dataset, Interactions, Item, LoadReport, build_interactions

__all__ = ["Catalog", "DataError", "Dataset", "Interactions", "Item", "LoadReport", "build_interactions"]
