"""A token key rotation while two API processes serve: no request with a valid token fails, and both
processes sign with the new key within the refresh bound, without restart. Either store: a key directory
both processes share, or the database (PostgreSQL) with nothing shared on disk."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text

from openims.iam.keys import master_keys
from tests.conftest import PG, PG_ADMIN_URL
from tests.support.server import Api, ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-keys")]

REFRESH = 1.0


MASTER = Fernet.generate_key().decode()


class Keys:
    """Where the two processes' keys are, and how to read the staged and the primary key."""

    def __init__(self, kind: str, root: Path, db_url: str) -> None:
        self.kind, self.root, self.db_url = kind, root, db_url

    def data_dir(self, n: int) -> Path:
        # Files: one data directory for both (database and key repository, as a shared mount would be).
        return self.root / ("data" if self.kind == "file" else f"data-{n}")

    @property
    def env(self) -> dict[str, str]:
        env = {"OPENIMS_KEY_REFRESH_SECONDS": str(REFRESH), "OPENIMS_WORKERS": "0",
               "OPENIMS_DATABASE_URL": self.db_url}
        if self.kind == "database":
            env |= {"OPENIMS_KEY_STORE": "database", "OPENIMS_MASTER_KEY": MASTER}
        return env

    def keys(self) -> dict[int, bytes]:
        if self.kind == "file":
            d = self.data_dir(0) / "fernet-keys"
            return {int(p.name): p.read_bytes().strip() for p in d.iterdir() if p.name.isdigit()}
        engine = create_engine(self.db_url)
        try:
            with engine.connect() as c:
                rows = c.execute(text("SELECT idx, sealed FROM key_material WHERE purpose = 'token'")).all()
        finally:
            engine.dispose()
        return {idx: master_keys(MASTER).decrypt(sealed.encode()) for idx, sealed in rows}


@pytest.fixture(params=["file", "database"])
def key_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Keys]:
    if request.param == "file":
        yield Keys("file", tmp_path, "")
        return
    if not PG:
        pytest.skip("needs PostgreSQL on 127.0.0.1:5432")
    name = f"openims_keys_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield Keys("database", tmp_path, PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_rotation_while_two_api_processes_serve(key_store: Keys) -> None:
    env = key_store.env
    one = ServerProcess(key_store.data_dir(1), env=env).start()
    two = ServerProcess(key_store.data_dir(2), env=env).start()
    refused: list[str] = []
    stop = threading.Event()
    try:
        tokens = [Api(one.url).token, Api(two.url).token]

        def hammer(url: str) -> None:
            with httpx.Client(base_url=url, timeout=30) as http:
                while not stop.is_set():
                    for token in tokens:
                        r = http.get("/v2/images", headers={"X-Auth-Token": token})
                        if r.status_code != 200:
                            refused.append(f"{url}: {r.status_code} {r.text[:200]}")

        threads = [threading.Thread(target=hammer, args=(s.url,)) for s in (one, two)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        staged = key_store.keys()[0]
        # From a third place (another host): it shares only what the processes share.
        rotate = subprocess.run([sys.executable, "-m", "openims.cli", "keys", "rotate"],
                                env={**os.environ, **env, "OPENIMS_DATA_DIR": str(key_store.data_dir(3))},
                                capture_output=True, text=True)
        assert rotate.returncode == 0, rotate.stderr
        keys = key_store.keys()
        assert keys[max(keys)] == staged and keys[0] != staged  # the staged key was promoted, a new one staged
        time.sleep(REFRESH + 1.0)
        # Tokens issued now by either process are signed with the new primary, and the other accepts them.
        fresh = [Api(one.url).token, Api(two.url).token]
        tokens.extend(fresh)
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(30)
        assert refused == []
        for token in fresh:
            Fernet(staged).decrypt(token.encode())  # signed with the promoted key, by both processes
            for server in (one, two):
                r = httpx.get(f"{server.url}/v3/auth/tokens", headers={"X-Auth-Token": token, "X-Subject-Token": token})
                assert r.status_code == 200, r.text
        assert "keys reloaded" in one.log.read_text() and "keys reloaded" in two.log.read_text()
        if key_store.kind == "database":
            assert not any(key_store.root.glob("data-*/fernet-keys"))  # nothing on disk to share
    finally:
        stop.set()
        one.stop()
        two.stop()
