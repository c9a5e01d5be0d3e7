"""Documents to index: an id, the text, and where the record came from.

A record's text is its `text` field (or `context`, `contexts`, `content`, `passage`, `document`, `abstract`,
`body`, in any case; `--columns FIELD=text` names another); its id is `id` (or `doc_id`, `document_id`), else
`<file stem>:<record index>`. A record without text, with empty text, or with an id seen before is an error
naming the file and record, unless the caller asks to skip it and is told why.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from lmtailor.core.io import DataError
from lmtailor.prompting.retrieval.sources import Source, pick, read_sources, text_of

TEXT_FIELDS = ("text", "context", "contexts", "content", "passage", "document", "abstract", "body")
ID_FIELDS = ("id", "doc_id", "document_id")


@dataclass(frozen=True, slots=True)
class Document:
    id: str
    text: str
    where: str  # "path: record i", for messages

    @property
    def digest(self) -> str:
        return hashlib.blake2b(self.text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def read_documents(
    paths: Iterable[Path],
    columns: dict[str, str] | None = None,
    skip: Callable[[DataError], None] | None = None,
) -> Iterator[Document]:
    """Every document under `paths`; a bad record raises DataError, or goes to `skip` when one is given."""
    seen: dict[str, str] = {}
    for path in paths:
        for source in read_sources(path, columns):
            try:
                doc = document(source)
                if doc.id in seen:
                    raise source.error(f"document id {doc.id!r} is also that of {seen[doc.id]}; ids must be unique")
            except DataError as e:
                if skip is None:
                    raise
                skip(e)
                continue
            seen[doc.id] = doc.where
            yield doc


def document(source: Source) -> Document:
    record = source.record
    key = pick(record, TEXT_FIELDS)
    if key is None:
        raise source.error(
            f"has no text field (it has {sorted(record)}); name the one holding the text with --columns FIELD=text"
        )
    text = text_of(source, key)
    if not text.strip():
        raise source.error(f"the document is empty: field {key!r} holds no text")
    id_key = pick(record, ID_FIELDS)
    doc_id = str(record[id_key]) if id_key is not None else f"{source.path.stem}:{source.index}"
    return Document(doc_id, text, source.where)
