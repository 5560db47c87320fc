"""A run's status: one name per state, stored as its plain string in meta.json."""
from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """StrEnum: each member equals its string, so stored values and old comparisons keep working."""

    RUNNING = "running"      # a live run, still producing records
    COMPLETE = "complete"    # every epoch and spectrum written
    DIVERGED = "diverged"    # stopped at the first non-finite loss or gradient; records up to it kept
    CANCELLED = "cancelled"  # stopped by the user (or before it started)
    FAILED = "failed"        # an exception ended it
