"""The table of audited actions covers every mutating route of the app, and says nothing of routes that are gone."""

from __future__ import annotations

from pathlib import Path

from openims.api.app import create_app
from openims.audit.actions import ACTIONS, MUTATING
from openims.runtime import build_runtime
from tests.conftest import make_settings


def _mutating_routes(tmp_path: Path) -> set[tuple[str, str]]:
    rt = build_runtime(make_settings(tmp_path / "data", f"sqlite:///{tmp_path / 'db.sqlite'}"))
    try:
        app = create_app(rt)
        return {(method, route.path_format) for route in app.state.api_routes
                for method in (getattr(route, "methods", None) or ()) if method in MUTATING}
    finally:
        rt.close()


def test_every_mutating_route_is_in_the_table(tmp_path: Path) -> None:
    routes = _mutating_routes(tmp_path)
    missing = sorted(routes - ACTIONS.keys())
    assert not missing, f"mutating routes not in audit.actions.ACTIONS (add them; None for a query): {missing}"
    stale = sorted(ACTIONS.keys() - routes)
    assert not stale, f"ACTIONS names routes the app does not have: {stale}"


def test_trace_names_are_cts_names() -> None:
    import re

    for action in ACTIONS.values():
        if action is not None:
            # CTS: 1-64 of 0-9a-zA-Z-._, starting with a letter.
            assert re.fullmatch(r"[A-Za-z][0-9A-Za-z._-]{0,63}", action.trace_name), action
