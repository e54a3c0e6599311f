"""Handlers for image-sharing member jobs (placeholder; filled in by its issue)."""

from __future__ import annotations

from typing import Any

HANDLERS: dict[str, Any] = {}
