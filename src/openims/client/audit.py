"""The audit trail: CTS's ``GET /v3/{project_id}/traces`` (account administrators and the operator)."""

from __future__ import annotations

from typing import Any

from openims.client.session import ApiError, Session

# CTS's largest page.
PAGE = 200


class AuditClient:
    def __init__(self, session: Session) -> None:
        self.session = session

    def list_traces(self, *, since_ms: int | None = None, until_ms: int | None = None, limit: int = 100,
                    **filters: str | None) -> list[dict[str, Any]]:
        """Traces newest first, at most ``limit``, following the ``next`` marker across pages.

        ``filters``: CTS's ``resource_id``, ``resource_type``, ``resource_name``, ``trace_name``,
        ``trace_rating``, ``service_type``, ``user``.
        """
        project = self.session.project_id
        if project is None:
            raise ApiError(0, "NoProject", "The token is not scoped to a project.")
        params: dict[str, Any] = {"trace_type": "system", **{k: v for k, v in filters.items() if v is not None}}
        if since_ms is not None:
            params["from"] = since_ms
        if until_ms is not None:
            params["to"] = until_ms
        out: list[dict[str, Any]] = []
        while len(out) < limit:
            params["limit"] = min(PAGE, limit - len(out))
            body = self.session.get(f"/v3/{project}/traces", params=params).json()
            out += body["traces"]
            marker = body["meta_data"].get("marker")
            if not marker:
                break
            params["next"] = marker
        return out
