"""Retrieval (stage one): every retriever behind one contract (``base.BaseRetriever``:
``retrieve`` for one history, ``score_batch`` for many), the hybrid blend with weights tuned
on validation users (``hybrid``), item-text embeddings with their cache (``embeddings``), the
vector index, and items related through the knowledge graph (``knowledge``). Imports no LLM.
"""
