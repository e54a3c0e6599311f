"""Ratings, the CLI's --since, and what a trace is made of."""

from __future__ import annotations

import datetime as dt

import pytest

from openims.audit.trail import INCIDENT, NORMAL, WARNING, rating_of
from openims.cli.audit import parse_since
from openims.cli.common import CliError


@pytest.mark.parametrize(("status", "rating"), [(200, NORMAL), (204, NORMAL), (302, NORMAL), (400, WARNING),
                                                (401, WARNING), (404, WARNING), (429, WARNING), (500, INCIDENT),
                                                (503, INCIDENT)])
def test_rating_by_status(status: int, rating: str) -> None:
    assert rating_of(status) == rating


def test_since() -> None:
    assert parse_since("30s") == dt.timedelta(seconds=30)
    assert parse_since("15m") == dt.timedelta(minutes=15)
    assert parse_since("1h") == dt.timedelta(hours=1)
    assert parse_since("7d") == dt.timedelta(days=7)
    for bad in ("", "1", "h", "1w", "-1h", "1.5h"):
        with pytest.raises(CliError):
            parse_since(bad)
