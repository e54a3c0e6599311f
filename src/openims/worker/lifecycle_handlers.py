"""Handlers for export, copy and register jobs (placeholder; filled in by its issue)."""

from __future__ import annotations

from typing import Any

HANDLERS: dict[str, Any] = {}
