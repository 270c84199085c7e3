"""Data: the catalogue and interaction containers (``catalog``: users as integer codes plus
a vocabulary), the ``Dataset`` that holds them with its side files (``dataset``), loaders for
MovieLens, RecBole atomic files and generic CSV/JSONL (``loaders``; interaction files are parsed
column-wise by pyarrow in ``columnar``, with line-numbered errors), the vectorised leave-one-out
split (``split``), title lookup in a catalogue (``titles``), and the optional side files of a
dataset: the knowledge graph of its items (``knowledge``) and the attributes of its users
(``users``). Pure: numpy, scipy.sparse and pyarrow, no models.
"""

from recommender.data.catalog import Catalog, DataError, Interactions, Item, LoadReport, build_interactions
from recommender.data.dataset import Dataset
from recommender.data.knowledge import KnowledgeGraph
from recommender.data.users import UserAttributes

__all__ = [
    "Catalog",
    "DataError",
    "Dataset",
    "Interactions",
    "Item",
    "KnowledgeGraph",
    "LoadReport",
    "UserAttributes",
    "build_interactions",
]
