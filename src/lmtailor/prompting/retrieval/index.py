"""A retrieval index: one folder holding the chunks, a BM25 index, the dense vectors and a manifest.

- `chunks.parquet`: one row per chunk: `id` (`<doc id>#<n>`), `doc`, `start`, `end` (its span in the document),
  `key` (its content hash), `text`;
- `bm25/`: the bm25s index over the chunk texts, row i being chunk i;
- `vectors.npy`: float32 unit vectors, row i being chunk i (absent from a lexical-only index);
- `store.sqlite`: every chunk's vector by content hash: what reindexing and a killed run reuse;
- `manifest.json`, written last: chunking, embedding model, BM25 settings, counts, and the digest of each file
  above but the store (a working file, never read by a query).

Indexing mirrors the documents given: their chunks replace the old ones, so an edited document's chunks change
and a deleted one's disappear. Only chunks whose text the store lacks are embedded; the store commits every
batch, so a killed run resumes where it stopped. The old index stays whole while the new chunks are embedded:
its manifest goes only when the new files start replacing its own, each written beside and renamed into place,
and the new manifest comes last (core/rundir.py's run folder), so a half-written index is refused, never read.
Reindexing with another chunking or embedding model is refused: chunks or vectors of two settings never mix.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lmtailor.core.io import DataError, atomic_path, parse_json
from lmtailor.core.records import RecordError
from lmtailor.core.rundir import RunFolder, RunFolderError, file_digest
from lmtailor.prompting.retrieval import lexical
from lmtailor.prompting.retrieval.chunking import EMBEDDER_TOKENS, ChunkConfig, chunk, fits_whole, pieces
from lmtailor.prompting.retrieval.documents import Document
from lmtailor.prompting.retrieval.store import VectorStore
from lmtailor.text.embeddings import DIM, MODEL_NAME, embed

_TOKENIZE = 256  # documents tokenized per call


class IndexMismatch(DataError):
    """An index built with other settings than those asked for."""

    def __init__(self, path: Path, problem: str):
        super().__init__(path, None, problem)


class IndexFolder(RunFolder):
    INDEX = "manifest.json"
    WHAT = "rag index"
    CHUNKS = "chunks.parquet"
    LEXICAL = "bm25"
    VECTORS = "vectors.npy"
    STORE = "store.sqlite"

    def file(self, name: str) -> Path:
        return self.path / name


class IndexConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    chunking: ChunkConfig = ChunkConfig()
    dense: bool = True  # False: BM25 only, nothing embedded
    embed_batch: int = Field(256, ge=1)  # chunks embedded, then committed to the store, at a time


class Embedding(BaseModel):
    model: str
    dim: int
    normalized: bool = True  # unit vectors: inner product is cosine


class Counts(BaseModel):
    documents: int
    chunks: int
    embedded: int  # chunk texts the store lacked, handed to the embedder
    reused: int  # chunk texts whose vector the store held
    forgotten: int  # vectors of chunks no longer indexed, dropped from the store
    skipped: int  # documents left out (--on-error skip), named in `skipped`


class IndexManifest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["lmtailor.rag.index"] = "lmtailor.rag.index"
    version: Literal[1] = 1
    chunking: ChunkConfig
    embedding: Embedding | None
    lexical: dict[str, Any]
    inputs: list[dict[str, Any]]  # path, bytes and digest of each input given
    counts: Counts
    skipped: list[str]
    seconds: dict[str, float]
    files: dict[str, dict[str, Any]] = {}


@dataclass(frozen=True)
class Chunks:
    """The chunk table, column by column; row i is row i of the BM25 index and of the vectors."""

    ids: list[str]
    docs: list[str]
    starts: list[int]
    ends: list[int]
    keys: list[str]
    texts: list[str]

    def __len__(self) -> int:
        return len(self.ids)

    @cached_property
    def by_doc(self) -> dict[str, list[int]]:
        rows: dict[str, list[int]] = {}
        for i, doc in enumerate(self.docs):
            rows.setdefault(doc, []).append(i)
        return rows

    def write(self, path: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({name: getattr(self, name + "s") for name in ("id", "doc", "start", "end", "key", "text")})
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)

    @classmethod
    def read(cls, path: Path) -> Chunks:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
            columns = {name: table.column(name).to_pylist() for name in ("id", "doc", "start", "end", "key", "text")}
        except (pa.ArrowException, KeyError, OSError) as e:
            raise RunFolderError(path, f"is not a readable chunk table ({e})") from None
        return cls(*(columns[n] for n in ("id", "doc", "start", "end", "key", "text")))


@dataclass
class Index:
    """An opened index, checked against its manifest."""

    path: Path
    manifest: IndexManifest
    chunks: Chunks
    lexical: Any  # bm25s.BM25
    vectors: np.ndarray | None


def build_index(
    docs: Iterable[Document],
    out: Path,
    cfg: IndexConfig | None = None,
    *,
    inputs: Sequence[Path] = (),
    skipped: Sequence[str] = (),
    fresh: bool = False,
    on_embedded: Callable[[int, int], None] | None = None,
) -> IndexManifest:
    """Index `docs` into the folder `out`, reusing the vectors its store holds. `inputs` (the files the documents
    came from) are recorded with their digests, `skipped` (documents left out) as given; `on_embedded(done,
    total)` is called after each batch is committed; `fresh` forgets the earlier index and its store."""
    cfg = cfg or IndexConfig()
    if cfg.dense and cfg.chunking.size > EMBEDDER_TOKENS:
        raise IndexMismatch(
            out,
            f"chunks of {cfg.chunking.size} tokens are longer than {MODEL_NAME} reads ({EMBEDDER_TOKENS} word "
            "pieces and its two markers): their ends would not be embedded; choose a smaller size",
        )
    folder = IndexFolder(out)
    with folder.locked():
        if fresh:
            folder.file(folder.STORE).unlink(missing_ok=True)
        else:
            _check_settings(folder, cfg)
        started = time.perf_counter()
        docs = list(docs)
        if not docs:
            raise DataError(out, None, "no documents to index")
        chunks = _chunked(docs, cfg.chunking)
        seconds = {"chunk": time.perf_counter() - started}
        embedded = reused = forgotten = 0
        vectors = None
        if cfg.dense:
            started = time.perf_counter()
            with VectorStore(folder.file(folder.STORE), MODEL_NAME, DIM) as store:
                missing = store.missing(chunks.keys)
                reused = len(set(chunks.keys)) - len(missing)
                text_of = dict(zip(chunks.keys, chunks.texts, strict=True))
                for lo in range(0, len(missing), cfg.embed_batch):
                    batch = missing[lo : lo + cfg.embed_batch]
                    store.add(batch, embed([text_of[k] for k in batch]))
                    embedded += len(batch)
                    if on_embedded is not None:
                        on_embedded(embedded, len(missing))
                forgotten = store.keep_only(chunks.keys)
                vectors = store.matrix(chunks.keys)
            seconds["embed"] = time.perf_counter() - started
        started = time.perf_counter()
        bm25 = lexical.build(chunks.texts)
        seconds["bm25"] = time.perf_counter() - started
        folder.begin()  # from here the old index is no longer whole: no manifest, no index
        with atomic_path(folder.file(folder.LEXICAL)) as tmp:
            tmp.mkdir()
            lexical.save(bm25, tmp)
        files = [folder.CHUNKS, folder.LEXICAL]
        if vectors is not None:
            with atomic_path(folder.file(folder.VECTORS)) as tmp, open(tmp, "wb") as f:
                np.save(f, vectors)
            files.append(folder.VECTORS)
        else:
            folder.file(folder.VECTORS).unlink(missing_ok=True)
        chunks.write(folder.file(folder.CHUNKS))
        manifest = IndexManifest(
            chunking=cfg.chunking,
            embedding=Embedding(model=MODEL_NAME, dim=DIM) if cfg.dense else None,
            lexical={**lexical.SETTINGS, "version": _bm25s_version()},
            inputs=[{"path": str(p), **file_digest(p)} for p in inputs],
            counts=Counts(
                documents=len(docs),
                chunks=len(chunks),
                embedded=embedded,
                reused=reused,
                forgotten=forgotten,
                skipped=len(skipped),
            ),
            skipped=list(skipped),
            seconds={k: round(v, 3) for k, v in seconds.items()},
        )
        written = folder.commit(manifest.model_dump(mode="json", exclude={"files"}), files)
        return IndexManifest.model_validate(written)


def _chunked(docs: list[Document], cfg: ChunkConfig) -> Chunks:
    ids, doc_ids, starts, ends, keys, texts = [], [], [], [], [], []
    for lo in range(0, len(docs), _TOKENIZE):
        batch = docs[lo : lo + _TOKENIZE]
        whole = [fits_whole(d.text, cfg) for d in batch]
        splits = iter(pieces([d.text for d, short in zip(batch, whole, strict=True) if not short]))
        for doc, short in zip(batch, whole, strict=True):
            for n, span in enumerate(chunk(doc.text, cfg, None if short else next(splits))):
                ids.append(f"{doc.id}#{n}")
                doc_ids.append(doc.id)
                starts.append(span.start)
                ends.append(span.end)
                keys.append(span.key)
                texts.append(span.text)
    return Chunks(ids, doc_ids, starts, ends, keys, texts)


def _check_settings(folder: IndexFolder, cfg: IndexConfig) -> None:
    """Refuse to reindex a finished index built with another chunking or embedding model."""
    try:
        earlier = parse_json(folder.index.read_text(encoding="utf-8"))
        manifest = IndexManifest.model_validate(earlier)
    except FileNotFoundError:
        return
    except (RecordError, UnicodeDecodeError, ValidationError):
        return  # not a readable manifest: nothing but the store (checked on its own) is reused
    if manifest.chunking != cfg.chunking:
        raise IndexMismatch(
            folder.path,
            f"was built with chunking {manifest.chunking.describe()}, not {cfg.chunking.describe()} as asked; "
            "index into another folder, or pass --fresh to rebuild it",
        )
    if cfg.dense and manifest.embedding is not None and manifest.embedding.model != MODEL_NAME:
        raise IndexMismatch(
            folder.path,
            f"was built with {manifest.embedding.model} embeddings, not {MODEL_NAME}; index into another folder, "
            "or pass --fresh to rebuild it",
        )


def _bm25s_version() -> str:
    import bm25s

    return bm25s.__version__


def open_index(path: Path | str, embedding_model: str = MODEL_NAME) -> Index:
    """The index at `path`, once every file matches its manifest and its vectors are `embedding_model`'s
    (queries are embedded with it: vectors of another model would be compared with the wrong space)."""
    folder = IndexFolder(path)
    content = folder.require_complete()
    try:
        manifest = IndexManifest.model_validate(content)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(map(str, first["loc"])) or "the manifest"
        raise RunFolderError(folder.index, f"is not a rag index manifest: {where}: {first['msg']}") from None
    if manifest.embedding is not None and manifest.embedding.model != embedding_model:
        raise IndexMismatch(
            folder.path,
            f"holds {manifest.embedding.model} embeddings but queries are embedded with {embedding_model}: "
            "the two cannot be compared; index the documents again",
        )
    chunks = Chunks.read(folder.file(folder.CHUNKS))
    if len(chunks) != manifest.counts.chunks:
        raise RunFolderError(
            folder.file(folder.CHUNKS), f"holds {len(chunks)} chunks, the manifest says {manifest.counts.chunks}"
        )
    bm25 = lexical.load(folder.file(folder.LEXICAL))
    if lexical.rows(bm25) != len(chunks):
        raise RunFolderError(
            folder.file(folder.LEXICAL), f"indexes {lexical.rows(bm25)} texts, not {len(chunks)} chunks"
        )
    vectors = None
    if manifest.embedding is not None:
        vectors = _vectors(folder.file(folder.VECTORS), (len(chunks), manifest.embedding.dim))
    return Index(folder.path, manifest, chunks, bm25, vectors)


def _vectors(path: Path, shape: tuple[int, int]) -> np.ndarray:
    try:
        vectors = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as e:
        raise RunFolderError(path, f"is not a readable vector file ({e})") from None
    if vectors.shape != shape or vectors.dtype != np.float32:
        raise RunFolderError(path, f"holds {vectors.dtype} vectors of shape {vectors.shape}, expected float32 {shape}")
    return vectors
