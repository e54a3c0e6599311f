"""A token key rotation while two API processes serve (sharing the key directory): no request with a
valid token fails, and both processes sign with the new key within the refresh bound, without restart."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from tests.support.server import Api, ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-keys")]

REFRESH = 1.0


def _primary(keys: Path) -> bytes:
    return (keys / str(max(int(p.name) for p in keys.iterdir() if p.name.isdigit()))).read_bytes()


def test_rotation_while_two_api_processes_serve(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {"OPENIMS_KEY_REFRESH_SECONDS": str(REFRESH), "OPENIMS_WORKERS": "0"}
    one = ServerProcess(data, env=env).start()
    two = ServerProcess(data, env=env).start()  # the same data directory: database and key repository
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
        keys = data / "fernet-keys"
        staged = (keys / "0").read_bytes()
        rotate = subprocess.run([sys.executable, "-m", "openims.cli", "keys", "rotate"],
                                env={**os.environ, "OPENIMS_DATA_DIR": str(data)}, capture_output=True, text=True)
        assert rotate.returncode == 0, rotate.stderr
        assert _primary(keys) == staged  # the staged key was promoted
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
            Fernet(staged.strip()).decrypt(token.encode())  # signed with the promoted key, by both processes
            for server in (one, two):
                r = httpx.get(f"{server.url}/v3/auth/tokens", headers={"X-Auth-Token": token, "X-Subject-Token": token})
                assert r.status_code == 200, r.text
        assert "token keys reloaded" in one.log.read_text() and "token keys reloaded" in two.log.read_text()
    finally:
        stop.set()
        one.stop()
        two.stop()
