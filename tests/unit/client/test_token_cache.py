"""The client's token cache: keying, the expiry margin, file permissions, atomic writes."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from pathlib import Path

import pytest

from openims.client.token_cache import CachedToken, CacheKey, TokenCache, default_path
from openims.clock import ManualClock

KEY = CacheKey("http://h:8080", "admin", "admin", "local-1")


def _entry(clock: ManualClock, minutes: float, token: str = "tok") -> CachedToken:
    return CachedToken(
        token=token,
        expires_at=clock() + dt.timedelta(minutes=minutes),
        project_id="p1",
        user_id="u1",
        domain_id="d1",
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(dt.datetime(2030, 1, 1, tzinfo=dt.UTC))


@pytest.fixture
def cache(tmp_path: Path, clock: ManualClock) -> TokenCache:
    return TokenCache(tmp_path / "cache" / "openims" / "tokens.json", clock=clock)


def test_round_trip_through_the_file(cache: TokenCache, tmp_path: Path, clock: ManualClock) -> None:
    cache.put(KEY, _entry(clock, 60))
    # A second instance (another process) reads what the first wrote.
    again = TokenCache(cache.path, clock=clock).get(KEY)
    assert again == _entry(clock, 60)


def test_keyed_by_endpoint_domain_user_project(cache: TokenCache, clock: ManualClock) -> None:
    cache.put(KEY, _entry(clock, 60))
    for other in (
        CacheKey("http://other:8080", "admin", "admin", "local-1"),
        CacheKey("http://h:8080", "acme", "admin", "local-1"),
        CacheKey("http://h:8080", "admin", "alice", "local-1"),
        CacheKey("http://h:8080", "admin", "admin", "local-1_dev"),
        CacheKey("http://h:8080", "admin", "admin", None),
    ):
        assert cache.get(other) is None, other
    # A trailing slash on the endpoint is the same endpoint.
    assert cache.get(CacheKey("http://h:8080/", "admin", "admin", "local-1")) is not None
    cache.put(CacheKey("http://h:8080", "admin", "alice", "local-1"), _entry(clock, 60, "alice-token"))
    got = cache.get(CacheKey("http://h:8080", "admin", "alice", "local-1"))
    assert got is not None and got.token == "alice-token"
    assert cache.get(KEY) is not None and cache.get(KEY).token == "tok"  # type: ignore[union-attr]


def test_reused_until_five_minutes_before_expiry(cache: TokenCache, clock: ManualClock) -> None:
    cache.put(KEY, _entry(clock, 10))
    assert cache.get(KEY) is not None
    clock.advance(4 * 60 + 59)  # 5 min 1 s left
    assert cache.get(KEY) is not None
    clock.advance(2)  # 4 min 59 s left: too close to expiry
    assert cache.get(KEY) is None


def test_file_and_directory_modes(cache: TokenCache, clock: ManualClock) -> None:
    old = os.umask(0o022)
    try:
        cache.put(KEY, _entry(clock, 60))
    finally:
        os.umask(old)
    assert cache.path is not None
    assert stat.S_IMODE(cache.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.path.parent.stat().st_mode) == 0o700


def test_existing_directory_mode_is_left_alone(tmp_path: Path, clock: ManualClock) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    cache = TokenCache(shared / "tokens.json", clock=clock)
    cache.put(KEY, _entry(clock, 60))
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755
    assert stat.S_IMODE((shared / "tokens.json").stat().st_mode) == 0o600


def test_write_is_atomic(cache: TokenCache, clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    cache.put(KEY, _entry(clock, 60, "first"))
    assert cache.path is not None
    before = cache.path.read_bytes()

    def fail(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        cache.put(KEY, _entry(clock, 60, "second"))
    # The old file is intact and no temporary file is left behind.
    assert cache.path.read_bytes() == before
    leftovers = [p.name for p in cache.path.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_damaged_file_is_ignored_and_replaced(cache: TokenCache, clock: ManualClock) -> None:
    assert cache.path is not None
    cache.path.parent.mkdir(parents=True)
    cache.path.write_text("{not json")
    assert cache.get(KEY) is None
    cache.put(KEY, _entry(clock, 60))
    assert json.loads(cache.path.read_text())["version"] == 1
    assert cache.get(KEY) is not None


def test_drop_and_pruning(cache: TokenCache, clock: ManualClock) -> None:
    stale = CacheKey("http://h:8080", "admin", "old", None)
    cache.put(stale, _entry(clock, 1))
    cache.put(KEY, _entry(clock, 60))
    clock.advance(120)
    cache.put(CacheKey("http://h:8080", "admin", "new", None), _entry(clock, 60))
    assert cache.path is not None
    stored = json.loads(cache.path.read_text())["tokens"]
    assert len(stored) == 2  # the expired entry was pruned on write
    cache.drop(KEY)
    assert cache.get(KEY) is None


def test_in_memory_cache_never_writes(
    tmp_path: Path, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENIMS_TOKEN_CACHE", str(tmp_path / "t.json"))
    cache = TokenCache.in_memory(clock=clock)
    cache.put(KEY, _entry(clock, 60))
    assert cache.get(KEY) is not None
    assert not (tmp_path / "t.json").exists()


def test_default_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert default_path({"OPENIMS_TOKEN_CACHE": str(tmp_path / "x.json")}) == tmp_path / "x.json"
    assert default_path({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "openims" / "tokens.json"
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_path({}) == tmp_path / ".cache" / "openims" / "tokens.json"
