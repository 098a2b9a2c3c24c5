"""Batch scoring of whole manifests: streamed in chunks, resumable, ranked exactly, on one machine
or on Spark. Uses the API's scoring routine (:func:`scoring.score_table`), so values agree."""

from batch._chunk import ManifestError
from batch._output import OutputPaths, read_metadata
from batch._profiles import PinnedRules
from batch._rank import select_manifest
from batch._reader import (
    BatchOutput,
    OutputListing,
    OutputReadError,
    list_outputs,
    read_output,
    resolve_output,
)
from batch._run import (
    BatchOptions,
    BatchSummary,
    BatchWriteError,
    CheckpointError,
    ProgressHook,
    score_manifest,
)

__all__ = [
    "BatchOptions",
    "BatchOutput",
    "BatchSummary",
    "BatchWriteError",
    "CheckpointError",
    "ManifestError",
    "OutputListing",
    "OutputPaths",
    "OutputReadError",
    "PinnedRules",
    "ProgressHook",
    "list_outputs",
    "read_metadata",
    "read_output",
    "resolve_output",
    "score_manifest",
    "select_manifest",
]
