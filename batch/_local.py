"""The local engine: chunks scored one after another in this process, each saved as a part."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from batch._checkpoint import Checkpoint, kill_point
from batch._chunk import ChunkSettings, score_chunk
from batch._input import InputFile, iter_chunks
from features.mapping import ColumnMapping
from scoring import RiskModel


@dataclass
class ChunkWork:
    """Everything a chunk needs besides its rows (shipped to Spark executors as is)."""

    model: RiskModel
    settings: ChunkSettings
    mapping: ColumnMapping | None
    chunk_rows: int


def score_file_chunks(work: ChunkWork, ckpt: Checkpoint, file: InputFile, skip: set[int],
                      on_chunk: Callable[[int, int], None] | None = None, first_chunk: int = 0,
                      last_chunk: int | None = None) -> int:
    """Score the chunks of one file not in ``skip``; returns the number of parts written."""
    written = 0
    for c, offset, frame in iter_chunks(file, work.chunk_rows, skip, first_chunk, last_chunk):
        res = score_chunk(frame, model=work.model, settings=work.settings, file_index=file.index,
                          source=str(file.path), row_offset=offset, mapping=work.mapping)
        ckpt.save_chunk(file.index, c, res.scored, res.rejects,
                        {"rows": res.rows_in, "rejected": res.rows_rejected, "first_row": offset + 1})
        written += 1
        if on_chunk is not None:
            on_chunk(res.rows_in, res.rows_rejected)
    return written


def run_local(work: ChunkWork, ckpt: Checkpoint, files: list[InputFile],
              on_chunk: Callable[[int, int], None] | None = None) -> None:
    done = ckpt.done()
    count = 0

    def chunk_done(rows: int, rejected: int) -> None:
        nonlocal count
        count += 1
        if on_chunk is not None:
            on_chunk(rows, rejected)
        kill_point("part", count)

    for file in files:
        score_file_chunks(work, ckpt, file, done.get(file.index, set()), chunk_done)
