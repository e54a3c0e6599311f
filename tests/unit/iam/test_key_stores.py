"""The database key store (OPENIMS_KEY_STORE=database): keys sealed under a master key, rotated under a
lock, followed by every process without restart; the same rules as the key directory."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from openims.clock import ManualClock
from openims.db import migrate
from openims.db.models import KeyMaterial
from openims.db.session import Database
from openims.errors import IamUnauthorized
from openims.iam.keys import DatabaseKeys, KeyRing, KeyStoreError, master_keys
from openims.iam.tokens import TokenCodec
from tests.unit.iam.test_tokens import _Ticks

MASTER = Fernet.generate_key().decode()


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    if db_url.startswith("sqlite"):
        migrate.upgrade(db_url)
    database = Database(db_url)
    yield database
    database.dispose()


def _store(db: Database, master: str = MASTER) -> DatabaseKeys:
    return DatabaseKeys(db, "token", master_keys(master), ManualClock())


def _issue(codec: TokenCodec) -> str:
    return codec.issue(user_id="u", user_domain_id="d", methods=("password",), roles=(), ttl=3600,
                       project_id="p")[0]


def test_keys_are_sealed_and_created_once(db: Database) -> None:
    store = _store(db)
    store.ensure()
    store.ensure()  # a second process starting: nothing new
    with db.transaction(readonly=True) as s:
        rows = s.scalars(select(KeyMaterial)).all()
    assert sorted(r.idx for r in rows) == [0, 1]
    clear = {k.decode() for k in (master_keys(MASTER).decrypt(r.sealed.encode()) for r in rows)}
    assert all(key not in r.sealed for r in rows for key in clear)  # never stored in clear
    # The other purpose is a separate set.
    DatabaseKeys(db, "credential", master_keys(MASTER), ManualClock()).ensure()
    with db.transaction(readonly=True) as s:
        assert len(s.scalars(select(KeyMaterial)).all()) == 4


def test_processes_starting_at_once_make_one_set(db: Database) -> None:
    errors: list[BaseException] = []

    def start() -> None:
        try:
            _store(db).ensure()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    with db.transaction(readonly=True) as s:
        assert sorted(r.idx for r in s.scalars(select(KeyMaterial))) == [0, 1]


def test_a_rotation_by_another_process_is_followed_without_restart(db: Database) -> None:
    _store(db).ensure()
    clock, ticks = ManualClock(), _Ticks()
    here = TokenCodec(KeyRing(_store(db), refresh=30, monotonic=ticks), clock)
    there = TokenCodec(KeyRing(_store(db), refresh=30, monotonic=ticks), clock)
    before = _issue(here)
    _store(db).rotate()  # `openims keys rotate` on another host
    ticks.now = 29
    assert here.verify(_issue(there)) and there.verify(before)  # not reloaded yet: all still valid
    ticks.now = 30
    after = _issue(here)
    with db.transaction(readonly=True) as s:
        staged = {r.idx: r for r in s.scalars(select(KeyMaterial).where(KeyMaterial.purpose == "token"))}
    primary = master_keys(MASTER).decrypt(staged[max(staged)].sealed.encode())
    Fernet(primary).decrypt(after.encode())  # signed with the promoted key
    assert there.verify(after) and there.verify(before)
    for _ in range(2):
        _store(db).rotate()
    ticks.now = 60
    there.verify(_issue(here))
    with pytest.raises(IamUnauthorized):
        there.verify(before)  # three rotations later its key is gone (3 active keys, as Keystone)


def test_a_wrong_master_key_stops_the_start(db: Database) -> None:
    _store(db).ensure()
    with pytest.raises(KeyStoreError, match="does not open"):
        _store(db, Fernet.generate_key().decode()).ensure()
    with pytest.raises(KeyStoreError, match="not a Fernet key"):
        master_keys("not-a-key")


def test_the_master_key_is_replaced_by_one_rotation(db: Database) -> None:
    _store(db).ensure()
    codec = TokenCodec(_store(db).load(), ManualClock())
    token = _issue(codec)
    new = Fernet.generate_key().decode()
    _store(db, f"{new},{MASTER}").rotate()  # processes given "new,old"; one rotation re-seals under new
    with pytest.raises(KeyStoreError):
        _store(db, MASTER).load()
    assert TokenCodec(_store(db, new).load(), ManualClock()).verify(token)  # the old master key can go


def test_processes_without_a_shared_directory_share_the_keys(db_url: str, tmp_path: Path) -> None:
    from openims.runtime import build_runtime
    from tests.conftest import make_settings

    one = build_runtime(make_settings(tmp_path / "one", db_url, key_store="database", master_key=MASTER))
    two = build_runtime(make_settings(tmp_path / "two", db_url, key_store="database", master_key=MASTER),
                        upgrade=False)
    try:
        assert two.codec.verify(_issue(one.codec)).user_id == "u"
        assert two.credential_cipher.open(one.credential_cipher.seal("s3cr3t")) == "s3cr3t"
        assert not (tmp_path / "one" / "fernet-keys").exists() and not (tmp_path / "two" / "credential-keys").exists()
    finally:
        one.close()
        two.close()
    with pytest.raises(KeyStoreError, match="OPENIMS_MASTER_KEY"):
        build_runtime(make_settings(tmp_path / "three", db_url, key_store="database"), upgrade=False)
    with pytest.raises(KeyStoreError, match="OPENIMS_MASTER_KEY_FILE cannot be read"):
        build_runtime(make_settings(tmp_path / "four", db_url, key_store="database",
                                    master_key_file=tmp_path / "missing"), upgrade=False)
    key_file = tmp_path / "master-key"
    key_file.write_text(MASTER + "\n")
    five = build_runtime(make_settings(tmp_path / "five", db_url, key_store="database", master_key_file=key_file),
                         upgrade=False)
    five.close()
