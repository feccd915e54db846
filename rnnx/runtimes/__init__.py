"""Runtimes behind one protocol (see base.Session)."""

from __future__ import annotations

from rnnx.runtimes.base import Session

__all__ = ["Session"]
