"""Runtimes behind one protocol (base.Session): one module per backend.

They are opened from an export directory through the registry (rnnx/formats.py: `rnnx.load`).
"""

from __future__ import annotations

from rnnx.runtimes.base import Session
from rnnx.runtimes.streaming import Stream, step_together

__all__ = ["Session", "Stream", "step_together"]
