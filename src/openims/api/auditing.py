"""The audit trace of a finished request (``ObservedMiddleware`` calls ``Auditor``): which requests are
traced and with what, from the route template, the status, the caller and at most one id of the response.

Traced: every mutating call listed in ``audit.actions`` (whatever its status: a refused or failed call
is traced too) and every failed authentication (any 401; a failed password login as ``login``).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
import anyio.to_thread
from starlette.requests import Request
from starlette.types import Scope

from openims import logs, metrics
from openims.api.middleware import route_template
from openims.audit.actions import (
    AUTHENTICATION_FAILED,
    LOGIN_FAILED,
    MUTATING,
    Action,
    action_of,
    service_of_path,
)
from openims.audit.throttle import FailureThrottle
from openims.audit.trail import API_CALL, Trace, epoch_ms, rating_of
from openims.config import parse_rate
from openims.runtime import Runtime

log = logging.getLogger("openims.audit")

# Set in the request's scope state by authentication: the access key of a signed request, and the user a
# password login named (a failed login has no caller; its trace names whom it tried).
ACCESS_KEY = "openims.audit.access_key"
LOGIN_SUBJECT = "openims.audit.login"
_TOKENS = ("POST", "/v3/auth/tokens")


def note(scope: Scope, key: str, value: object) -> None:
    scope.setdefault("state", {})[key] = value


def _dig(data: Any, path: tuple[str, ...] | None) -> str | None:
    if path is None:
        return None
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data if isinstance(data, str) else None


class Auditor:
    """``api.middleware.RequestAuditor`` over the runtime's ``AuditTrail``."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.failures = FailureThrottle(parse_rate(rt.settings.audit_failed_auth_per_source))

    def wants_response(self, method: str, route: str, status: int) -> bool:
        if status >= 300 or method not in MUTATING:
            return False
        action = action_of(method, route)
        return action is not None and (action.id_in_response is not None or action.name_in_response is not None)

    def trace_of(self, scope: Scope, status: int, ctx: logs.LogContext, response: bytes | None) -> Trace | None:
        method, route = scope["method"], route_template(scope)
        action = action_of(method, route) if method in MUTATING else None
        trace_name = action.trace_name if action is not None else None
        if (method, route) == _TOKENS and status == 401:
            trace_name = LOGIN_FAILED
        if action is None:
            if status != 401:
                return None
            action = Action(service_of_path(scope["path"]), "authentication", AUTHENTICATION_FAILED)
            trace_name = AUTHENTICATION_FAILED
        assert trace_name is not None
        params: dict[str, Any] = scope.get("path_params", {})
        resource_id = str(params[action.id_param]) if action.id_param and action.id_param in params else None
        resource_name = str(params[action.name_param]) if action.name_param and action.name_param in params else None
        if response is not None:
            try:
                body = json.loads(response)
            except ValueError:
                body = None
            resource_id = _dig(body, action.id_in_response) or resource_id
            resource_name = _dig(body, action.name_in_response) or resource_name
        state: dict[str, Any] = scope.get("state", {})
        user_id, account, project = ctx.user_id, ctx.account, ctx.project
        user_name = domain_name = None
        login = state.get(LOGIN_SUBJECT)
        if user_id is None and isinstance(login, dict):
            user_id, user_name = login.get("user_id"), login.get("user_name")
            account, domain_name = login.get("domain_id"), login.get("domain_name")
        version = route.split("/")[1] if route.count("/") > 1 else None
        return Trace(
            service_type=action.service.value, resource_type=action.resource_type, trace_name=trace_name,
            trace_rating=rating_of(status), trace_type=API_CALL, time=epoch_ms(self.rt.clock()),
            domain_id=account, project_id=project, user_id=user_id, user_name=user_name,
            user_domain_name=domain_name, access_key_id=state.get(ACCESS_KEY), resource_id=resource_id,
            resource_name=resource_name, code=str(status), request_id=ctx.request_id,
            source_ip=self._source(scope), api_version=version)

    def _failure_written(self, trace: Trace) -> bool:
        """Whether a failed authentication's trace is written (``audit.throttle``); any other trace is."""
        if trace.trace_name not in (AUTHENTICATION_FAILED, LOGIN_FAILED):
            return True
        decision = self.failures.decide(trace.source_ip, trace.time / 1000)
        if decision.left_out_before:
            log.warning("audit: %d further failed authentications from %s were not traced (over %s)",
                        decision.left_out_before, trace.source_ip, self.rt.settings.audit_failed_auth_per_source)
        if not decision.write:
            metrics.AUDIT_FAILURES_NOT_TRACED.inc()
            if decision.first_left_out:
                log.warning("audit: failed authentications from %s are over %s: the rest of this window's are "
                            "counted, not traced", trace.source_ip, self.rt.settings.audit_failed_auth_per_source)
        return decision.write

    def _source(self, scope: Scope) -> str | None:
        from openims.api.auth import source_address  # auth imports the middleware this is handed to

        return source_address(Request(scope), self.rt)

    async def record(self, scope: Scope, status: int, ctx: logs.LogContext, response: bytes | None) -> None:
        try:
            trace = self.trace_of(scope, status, ctx, response)
            if trace is None or not self._failure_written(trace):
                return
            # Shielded: a client that went away must not cancel the trace of what it did.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self.rt.audit.record, trace)
        except Exception:
            log.warning("audit: the request's trace could not be made", exc_info=True)
