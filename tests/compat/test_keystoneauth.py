"""keystoneauth1's v3 Password plugin, unchanged, against a real server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from tests.support.server import ADMIN_PASSWORD, ServerProcess

pytestmark = [pytest.mark.compat, pytest.mark.xdist_group("compat")]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("compat") / "data") as srv:
        yield srv


@pytest.mark.parametrize("auth_path", ["/v3", "/identity/v3", "/identity"])
def test_password_plugin_finds_image_endpoint(server: ServerProcess, auth_path: str) -> None:
    auth = v3.Password(auth_url=server.url + auth_path, username="admin", password=ADMIN_PASSWORD,
                       user_domain_name="admin", project_name="local-1", project_domain_name="admin")
    sess = ks_session.Session(auth=auth)
    token = sess.get_token()
    assert token
    assert sess.get_project_id()
    endpoint = sess.get_endpoint(service_type="image", interface="public", region_name="local-1")
    assert endpoint == f"{server.url}/image"
    # Version discovery through the catalog endpoint lands on the v2 API, as openstacksdk does it.
    versioned = sess.get_endpoint(service_type="image", interface="public", min_version="2", max_version="2.latest")
    assert versioned is not None and versioned.rstrip("/").endswith("/image/v2")
    r = sess.get(f"{server.url}/v2/cloudimages")
    assert r.status_code == 200 and r.json() == {"images": []}


def test_wrong_password_is_refused(server: ServerProcess) -> None:
    from keystoneauth1 import exceptions

    auth = v3.Password(auth_url=server.url + "/v3", username="admin", password="nope", user_domain_name="admin",
                       project_name="local-1", project_domain_name="admin")
    with pytest.raises(exceptions.Unauthorized):
        ks_session.Session(auth=auth).get_token()


