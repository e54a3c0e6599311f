"""Token codec and key repository: expiry, tampering, rotation."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from openims.clock import ManualClock
from openims.errors import IamUnauthorized
from openims.iam.keys import KeyRepository
from openims.iam.passwords import PasswordHashing, password_problem
from openims.iam.tokens import TokenCodec


def _issue(codec: TokenCodec, ttl: int = 60) -> str:
    token, _ = codec.issue(user_id="u", user_domain_id="d", methods=("password",), roles=("te_admin",), ttl=ttl,
                           project_id="p")
    return token


def test_round_trip_and_expiry(tmp_path: Path) -> None:
    repo = KeyRepository(tmp_path / "keys")
    repo.ensure()
    clock = ManualClock()
    codec = TokenCodec(repo.load(), clock)
    token = _issue(codec)
    data = codec.verify(token)
    assert data.project_id == "p" and data.roles == ("te_admin",) and data.scope == "project"
    with pytest.raises(IamUnauthorized):
        codec.verify(token + "\n")  # one token, one spelling: a regex's `$` alone would take a final newline
    clock.advance(59)
    codec.verify(token)
    clock.advance(1)
    with pytest.raises(IamUnauthorized, match="expired"):
        codec.verify(token)


def test_key_files_are_private(tmp_path: Path) -> None:
    repo = KeyRepository(tmp_path / "keys")
    repo.ensure()
    for p in (tmp_path / "keys").iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600


def test_rotation_keeps_old_tokens_valid_until_their_key_is_dropped(tmp_path: Path) -> None:
    repo = KeyRepository(tmp_path / "keys", max_active_keys=3)
    repo.ensure()
    clock = ManualClock()
    old = _issue(TokenCodec(repo.load(), clock))
    repo.rotate()
    codec = TokenCodec(repo.load(), clock)
    codec.verify(old)  # previous primary is now a secondary
    new = _issue(codec)
    repo.rotate()  # with three active keys, the one that signed `old` falls out
    codec = TokenCodec(repo.load(), clock)
    codec.verify(new)
    with pytest.raises(IamUnauthorized):
        codec.verify(old)


def test_foreign_key_is_refused(tmp_path: Path) -> None:
    a, b = KeyRepository(tmp_path / "a"), KeyRepository(tmp_path / "b")
    a.ensure()
    b.ensure()
    token = _issue(TokenCodec(a.load(), ManualClock()))
    with pytest.raises(IamUnauthorized):
        TokenCodec(b.load(), ManualClock()).verify(token)


def test_passwords_are_argon2id_and_checked() -> None:
    hashing = PasswordHashing(time_cost=1, memory_kib=8)
    stored = hashing.hash("Secret-123")
    assert stored.startswith("$argon2id$")
    assert hashing.verify(stored, "Secret-123")
    assert not hashing.verify(stored, "secret-123")
    assert not hashing.verify(None, "Secret-123")
    assert password_problem("short") is not None
    assert password_problem("alllowercase") is not None
    assert password_problem("Admin-Pass-1", user_name="admin") is not None
    assert password_problem("Good-Pass-123") is None


class _Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_rotation_on_disk_is_picked_up_within_the_refresh(tmp_path: Path) -> None:
    """Two processes share the key directory; one rotates. Neither restarts, no valid token is refused."""
    from openims.iam.keys import KeyRing

    repo = KeyRepository(tmp_path / "keys")
    repo.ensure()
    clock, ticks = ManualClock(), _Ticks()
    here = TokenCodec(KeyRing(KeyRepository(tmp_path / "keys"), refresh=30, monotonic=ticks), clock)
    there = TokenCodec(KeyRing(KeyRepository(tmp_path / "keys"), refresh=30, monotonic=ticks), clock)
    before = _issue(here)

    repo.rotate()  # on another host, say
    ticks.now = 29
    # Not reloaded yet: both still sign with the old primary and verify everything.
    assert here.verify(_issue(there)) and there.verify(before)
    ticks.now = 30
    after = _issue(here)  # reloaded: signed with the promoted key
    there.verify(after)
    there.verify(before)  # issued before the rotation: valid until it expires

    # A rotation that drops the oldest key (max 3 active) still leaves tokens of the current primary valid.
    repo.rotate()
    repo.rotate()
    ticks.now = 60
    there.verify(_issue(here))
    with pytest.raises(IamUnauthorized):
        there.verify(before)  # its key was pruned (3 active keys, as Keystone keeps): it is refused now


def test_a_half_done_rotation_keeps_the_keys_in_use(tmp_path: Path) -> None:
    from openims.iam.keys import KeyRing

    repo = KeyRepository(tmp_path / "keys")
    repo.ensure()
    ticks = _Ticks()
    codec = TokenCodec(KeyRing(repo, refresh=1, monotonic=ticks), ManualClock())
    token = _issue(codec)
    (tmp_path / "keys" / "0").write_bytes(b"not a key")  # caught mid-write
    ticks.now = 5
    assert codec.verify(token)
