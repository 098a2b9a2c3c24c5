"""The errors of a batch run that users act on."""

from __future__ import annotations


class BatchWriteError(RuntimeError):
    """Writing failed (a full disk, a quota): nothing was published, the checkpoint is kept to resume."""
