"""Parquet's own dictionaries of a frame's text columns, kept for the frame's life.

A batch reader decodes the key text columns from the dictionaries Parquet stores them in and keeps
each (:func:`keep_dictionaries`). The contract checks each distinct value once where a column still
holds the decoded array, and the features factorize it without hashing its values again; a column that
was rewritten, filtered or copied since holds other buffers, and is simply checked and factorized as
any column is (:func:`kept_dictionary` compares buffers).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping

import pandas as pd
import pyarrow as pa

_DICTIONARIES: dict[int, dict[str, tuple[pa.Array, pa.DictionaryArray]]] = {}  # by id of a live frame
_DICTIONARIES_LOCK = threading.Lock()


def keep_dictionaries(frame: pd.DataFrame, decoded: Mapping[str, tuple[pa.Array, pa.DictionaryArray]]) -> None:
    """Remember for ``frame``'s life the dictionary arrays its text columns were decoded from
    (column → (the decoded array, the dictionary array)), for :func:`kept_dictionary`."""
    if not decoded:
        return
    key = id(frame)
    with _DICTIONARIES_LOCK:
        _DICTIONARIES[key] = dict(decoded)
    weakref.finalize(frame, _forget_dictionaries, key)  # runs before the id can be reused


def carry_dictionaries(source: pd.DataFrame, frame: pd.DataFrame) -> None:
    """``frame`` (e.g. the validated ``source``) may use ``source``'s dictionaries where it holds its arrays."""
    decoded = _DICTIONARIES.get(id(source))
    if decoded and frame is not source:
        keep_dictionaries(frame, decoded)


def _forget_dictionaries(key: int) -> None:
    with _DICTIONARIES_LOCK:
        _DICTIONARIES.pop(key, None)


def _single(arr: pa.Array | pa.ChunkedArray) -> pa.Array | None:
    if isinstance(arr, pa.ChunkedArray):
        return arr.chunk(0) if arr.num_chunks == 1 else None
    return arr


def _same_array(a: pa.Array, b: pa.Array) -> bool:
    """The same values because the same immutable buffers, offset and length."""
    def where(x: pa.Array) -> list[int]:
        return [0 if buf is None else buf.address for buf in x.buffers()]

    return a.type == b.type and len(a) == len(b) and a.offset == b.offset and where(a) == where(b)


def kept_dictionary(df: pd.DataFrame, name: str, arr: pa.Array | pa.ChunkedArray) -> pa.DictionaryArray | None:
    """The dictionary array column ``name`` of ``df`` was decoded from, while ``arr`` (the column's
    Arrow array) is still that decoded array; else None."""
    decoded = _DICTIONARIES.get(id(df))
    hint = decoded.get(name) if decoded else None
    one = _single(arr) if hint is not None else None
    if hint is None or one is None or not _same_array(hint[0], one):
        return None
    return hint[1]


