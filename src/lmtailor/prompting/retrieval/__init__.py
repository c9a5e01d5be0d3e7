"""Retrieval for RAG: documents cut into chunks, indexed for BM25 and dense search, retrieved for questions and
put before them within a token budget.

    index = open_index("runs/covid_index")
    prompter = RetrievalPrompter(index, inner, llm.count_tokens, SearchConfig(mode="hybrid", k=5), budget=512)
    prompter = RetrievalPrompter.from_config(RetrievalConfig(index="runs/covid_index"), inner, llm.count_tokens)

Modules, bottom up: sources (raw records in the shapes QA sets ship in), documents and queries (what is indexed
and asked), chunking, store (the index's vectors by content hash), lexical (bm25s) and dense (numpy), index (the
folder), search (bm25, dense, hybrid by reciprocal rank fusion), metrics (recall@k, MRR, nDCG) and prompter.
"""

from lmtailor.prompting.retrieval.index import Index, IndexConfig, build_index, open_index
from lmtailor.prompting.retrieval.prompter import RetrievalConfig, RetrievalPrompter
from lmtailor.prompting.retrieval.search import SearchConfig, search

__all__ = [
    "Index",
    "IndexConfig",
    "RetrievalConfig",
    "RetrievalPrompter",
    "SearchConfig",
    "build_index",
    "open_index",
    "search",
]
