"""Batch scoring of whole manifests: streamed in chunks, resumable, ranked exactly, on one machine
or on Spark. Uses the API's scoring routine (:func:`scoring.score_table`), so values agree."""

from batch._chunk import ManifestError
from batch._errors import BatchWriteError
from batch._lock import OutputBusyError, output_lock
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
    "OutputBusyError",
    "OutputReadError",
    "PinnedRules",
    "ProgressHook",
    "list_outputs",
    "output_lock",
    "read_metadata",
    "read_output",
    "resolve_output",
    "score_manifest",
    "select_manifest",
]
