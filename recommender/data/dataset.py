"""A dataset: its catalogue, its interactions, what the loader dropped, and its optional side files.

Above ``catalog``, ``knowledge`` and ``users`` (it holds one of each), so none of them imports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from recommender.data.catalog import Catalog, Interactions, LoadReport
from recommender.data.knowledge import KnowledgeGraph
from recommender.data.users import UserAttributes


@dataclass(frozen=True)
class Dataset:
    """A catalogue, its interactions and the loader's report; optionally the knowledge graph
    of its items (``<name>.kg`` + ``<name>.link``) and the attributes of its users (``<name>.user``)."""

    name: str
    catalog: Catalog
    interactions: Interactions
    report: LoadReport
    knowledge: KnowledgeGraph | None = field(default=None, repr=False)
    users: UserAttributes | None = field(default=None, repr=False)

    def fingerprint(self) -> str:
        """Catalogue and interactions only: what caches of embeddings, models and weights are
        built from. Components built on ``knowledge`` key on ``KnowledgeGraph.fingerprint()``."""
        return f"{self.catalog.fingerprint()}-{self.interactions.fingerprint()}"

    def summary(self) -> str:
        return (
            f"{self.name}: {self.interactions.n_users} users, {len(self.catalog)} items, "
            f"{len(self.interactions)} interactions"
        )
