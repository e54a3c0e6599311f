"""AK/SK signatures: the SDK's own test vector, and cross-checks against the SDK's signer classes."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any
from urllib.parse import unquote

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer import hkdf
from huaweicloudsdkcore.signer.signer import DerivationAKSKSigner, P256SHA256Signer, Signer, SM3Signer

from openims.errors import ApigError
from openims.iam import signing
from openims.iam.signing import Algorithm

# The vector of sdk-wire.md, produced by huaweicloudsdkcore 3.1.219 itself.
AK = "TESTAK1234567890"
SK = "TESTSKabcdefghijklmnopqrstuvwxyz0123456"
VECTOR_HEADERS = {"X-Sdk-Date": "20240101T000000Z", "User-Agent": "huaweicloud-usdk-python/3.0; test-agent",
                  "X-Project-Id": "pid-0123456789abcdef", "Host": "127.0.0.1:8080"}
VECTOR_BODY = (b'{"name": "img1", "os_version": "CentOS 7.0 64bit", "image_url": "bucket:file.qcow2", '
               b'"min_disk": 40, "is_config": true}')
SIGNED = "content-type;host;user-agent;x-project-id;x-sdk-date"


def _raw(headers: dict[str, str]) -> dict[str, bytes]:
    return {k.lower(): v.encode() for k, v in headers.items()}


class TestSdkVector:
    def test_post_create_image(self) -> None:
        headers = {**VECTOR_HEADERS, "Content-Type": "application/json;charset=utf-8"}
        payload = signing.hex_digest(Algorithm.HMAC_SHA256, VECTOR_BODY)
        assert payload == "e33eca7a9048e04cca734e7cd8437b0ebecbf5b6d3fb92d12381e7ea0a24ca1a"
        creq = signing.canonical_request("POST", "/v2/cloudimages/action", [], _raw(headers), SIGNED.split(";"),
                                         payload)
        assert hashlib.sha256(creq).hexdigest() == "60a09b9933da40906fdc066d2c521378f1342905bbf69ebf3290cf7501cdc435"
        auth = signing.sign(algorithm=Algorithm.HMAC_SHA256, access_key=AK, secret_key=SK, method="POST",
                            path="/v2/cloudimages/action", query="", headers=headers, body=VECTOR_BODY)
        assert auth == (f"SDK-HMAC-SHA256 Access={AK}, SignedHeaders={SIGNED}, "
                        "Signature=540352f4edde55d284144200efd86a0d94cc5a62691ded492252e66eaf52ee59")

    def test_get_list_images(self) -> None:
        headers = {**VECTOR_HEADERS, "Content-Type": "application/json"}
        auth = signing.sign(algorithm=Algorithm.HMAC_SHA256, access_key=AK, secret_key=SK, method="GET",
                            path="/v2/cloudimages", query="__imagetype=private&id=11111111-2222-3333-4444-555555555555",
                            headers=headers, body=b"")
        assert auth.endswith("Signature=750b4df110eddd4e2ce2f2515747e55b742271277217e3f85a2e4f50dcf0b521")

    def test_vector_verifies_and_a_changed_byte_does_not(self) -> None:
        headers = {**VECTOR_HEADERS, "Content-Type": "application/json;charset=utf-8"}
        auth = signing.parse_authorization(
            f"SDK-HMAC-SHA256 Access={AK}, SignedHeaders={SIGNED}, "
            "Signature=540352f4edde55d284144200efd86a0d94cc5a62691ded492252e66eaf52ee59")
        good = signing.ReceivedRequest("POST", "/v2/cloudimages/action", "", _raw(headers),
                                       (signing.hex_digest(Algorithm.HMAC_SHA256, VECTOR_BODY),))
        assert signing.verify(auth, SK, good, "20240101T000000Z")
        assert not signing.verify(auth, SK + "x", good, "20240101T000000Z")
        tampered_body = VECTOR_BODY.replace(b"40", b"41")
        bad = signing.ReceivedRequest("POST", "/v2/cloudimages/action", "", _raw(headers),
                                      (signing.hex_digest(Algorithm.HMAC_SHA256, tampered_body),))
        assert not signing.verify(auth, SK, bad, "20240101T000000Z")
        moved = signing.ReceivedRequest("POST", "/v2/cloudimages/action", "", {**_raw(headers),
                                        "x-project-id": b"pid-other"}, good.payload_hashes)
        assert not signing.verify(auth, SK, moved, "20240101T000000Z")


# ---------------------------------------------------------------- cross-checks with the SDK's signers


def _sdk_signed(signer: Any, *, method: str, path: str, query: list[tuple[str, Any]], body: bytes | None,
                headers: dict[str, str], **sign_kw: Any) -> tuple[SdkRequest, signing.ReceivedRequest]:
    request = SdkRequest(method=method, schema="http", host="127.0.0.1:8080", resource_path=path, uri=path,
                         query_params=query, header_params=dict(headers), body=body)
    signer.sign(request, **sign_kw)
    uri_query = request.uri.partition("?")[2]
    # The SDK sends each header value as the Latin-1 view of its UTF-8 bytes: what a server receives.
    raw = {k.lower(): str(v).encode("latin-1") for k, v in request.header_params.items() if k != "Authorization"}
    declared = raw.get(signing.content_hash_header(_algorithm_of(request)))
    if not body:
        payload = signing.empty_hash(_algorithm_of(request))
    elif declared is not None:
        payload = declared.decode()
    else:
        payload = signing.hex_digest(_algorithm_of(request), body)
    # A server routes on the percent-decoded path.
    return request, signing.ReceivedRequest(method, unquote(path), uri_query, raw, (payload,))


def _algorithm_of(request: SdkRequest) -> Algorithm:
    return Algorithm(request.header_params["Authorization"].split(" ", 1)[0])


CASES = [
    pytest.param("GET", "/v2/cloudimages", [("__imagetype", "private"), ("name", "a b+c~d/é"), ("limit", 10),
                                             ("protected", False)], None, id="query-encoding"),
    pytest.param("POST", "/v2/cloudimages/action", [], json.dumps({"name": "镜像", "min_disk": 40}).encode(),
                 id="json-body"),
    pytest.param("GET", "/v2/images/abc def/x%2Fy", [], None, id="path-encoding"),
    pytest.param("PATCH", "/v2/images/11111111-2222-3333-4444-555555555555", [],
                 b'[{"op": "replace", "path": "/name", "value": "n"}]', id="unsigned-payload"),
]


def _headers(method: str, body: bytes | None) -> dict[str, str]:
    content_type = "application/json;charset=utf-8" if body else "application/json"
    if method == "PATCH":
        # A non-JSON content type makes the SDK send UNSIGNED-PAYLOAD.
        content_type = "application/openstack-images-v2.1-json-patch"
    return {"Content-Type": content_type, "User-Agent": "huaweicloud-usdk-python/3.0; ünïcode-agent",
            "X-Project-Id": "0" * 32, "X-Sdk-Date": "20240601T101112Z"}


class TestAgainstSdkSigners:
    @pytest.mark.parametrize(("method", "path", "query", "body"), CASES)
    def test_sha256(self, method: str, path: str, query: list[tuple[str, Any]], body: bytes | None) -> None:
        request, received = _sdk_signed(Signer(BasicCredentials(AK, SK)), method=method, path=path, query=query,
                                        body=body, headers=_headers(method, body))
        auth = signing.parse_authorization(request.header_params["Authorization"])
        assert auth.algorithm is Algorithm.HMAC_SHA256 and auth.access_key == AK
        assert signing.verify(auth, SK, received, "20240601T101112Z")
        assert not signing.verify(auth, SK[:-1], received, "20240601T101112Z")
        if method == "PATCH":
            assert received.payload_hashes == (signing.UNSIGNED_PAYLOAD,)

    @pytest.mark.parametrize(("method", "path", "query", "body"), CASES)
    def test_sm3(self, method: str, path: str, query: list[tuple[str, Any]], body: bytes | None) -> None:
        request, received = _sdk_signed(SM3Signer(BasicCredentials(AK, SK)), method=method, path=path, query=query,
                                        body=body, headers=_headers(method, body))
        auth = signing.parse_authorization(request.header_params["Authorization"])
        assert auth.algorithm is Algorithm.HMAC_SM3
        assert signing.verify(auth, SK, received, "20240601T101112Z")
        # The same request under SHA-256 rules does not verify: the algorithms really differ.
        as_sha = signing.Authorization(Algorithm.HMAC_SHA256, AK, auth.signed_headers, auth.signature)
        assert not signing.verify(as_sha, SK, received, "20240601T101112Z")

    def test_sm3_empty_hash_is_the_sdks(self) -> None:
        assert signing.empty_hash(Algorithm.HMAC_SM3) == SM3Signer._EMPTY_HASH
        assert signing.empty_hash(Algorithm.HMAC_SHA256) == Signer._EMPTY_HASH

    @pytest.mark.parametrize(("method", "path", "query", "body"), CASES)
    def test_v11_derived_key(self, method: str, path: str, query: list[tuple[str, Any]], body: bytes | None) -> None:
        request, received = _sdk_signed(DerivationAKSKSigner(BasicCredentials(AK, SK)), method=method, path=path,
                                        query=query, body=body, headers=_headers(method, body),
                                        derived_auth_service_name="ims", region_id="local-1")
        value = request.header_params["Authorization"]
        assert value.startswith(f"V11-HMAC-SHA256 Credential={AK}/20240601/local-1/ims, ")
        auth = signing.parse_authorization(value)
        assert auth.access_key == AK and auth.scope == "20240601/local-1/ims"
        assert signing.verify(auth, SK, received, "20240601T101112Z")
        signing.check_scope(auth, "20240601T101112Z", "local-1")
        assert not signing.verify(auth, "other-secret", received, "20240601T101112Z")

    def test_v11_key_derivation_matches_the_sdk(self) -> None:
        ours = signing.derive_v11_key(AK, SK, "20240601/local-1/ims").decode()
        assert ours == hkdf.get_der_key_sha256(AK, SK, "20240601/local-1/ims")
        assert len(ours) == 64

    def test_our_sign_equals_the_sdks(self) -> None:
        headers = _headers("POST", b"{}")
        request, _ = _sdk_signed(Signer(BasicCredentials(AK, SK)), method="POST",
                                 path="/v1/cloudimages/dataimages/action", query=[], body=b"{}", headers=headers)
        ours = signing.sign(algorithm=Algorithm.HMAC_SHA256, access_key=AK, secret_key=SK, method="POST",
                            path="/v1/cloudimages/dataimages/action", query="",
                            headers={**headers, "Host": "127.0.0.1:8080"}, body=b"{}")
        assert ours == request.header_params["Authorization"]


# ---------------------------------------------------------------- parsing and checks


class TestParseAuthorization:
    @pytest.mark.parametrize("value", [
        "SDK-HMAC-SHA256 Access=AK1, SignedHeaders=x-sdk-date",
        "SDK-HMAC-SHA256 Access=AK1, SignedHeaders=x-sdk-date, Signature=zz",
        "SDK-HMAC-SHA256 Access=AK 1, SignedHeaders=x-sdk-date, Signature=" + "a" * 64,
        "SDK-HMAC-SHA256 Access=AK1, SignedHeaders=X-Sdk-Date, Signature=" + "a" * 64,
        "SDK-HMAC-SHA256 Access=AK1, SignedHeaders=x-sdk-date;authorization, Signature=" + "a" * 64,
        "SDK-HMAC-SHA256 Access=AK1, SignedHeaders=host;host, Signature=" + "a" * 64,
        "SDK-HMAC-SHA256 Access=AK1, Access=AK2, SignedHeaders=host, Signature=" + "a" * 64,
        "V11-HMAC-SHA256 Credential=AK1, SignedHeaders=host, Signature=" + "a" * 64,
        "V11-HMAC-SHA256 Access=AK1, SignedHeaders=host, Signature=" + "a" * 64,
        "SDK-HMAC-MD5 Access=AK1, SignedHeaders=host, Signature=" + "a" * 64,
        "SDK-HMAC-SHA256",
    ])
    def test_malformed_is_refused(self, value: str) -> None:
        with pytest.raises(ApigError) as info:
            signing.parse_authorization(value)
        assert info.value.status == 401 and info.value.code == "APIGW.0301"

    def test_key_pair_algorithms_are_named_unsupported(self) -> None:
        request = SdkRequest(method="GET", schema="http", host="h", resource_path="/v2/cloudimages",
                             uri="/v2/cloudimages", query_params=[],
                             header_params={"X-Sdk-Date": "20240601T101112Z"}, body=None)
        P256SHA256Signer(BasicCredentials(AK, SK)).sign(request)
        with pytest.raises(ApigError, match="SDK-ECDSA-P256-SHA256 is not supported"):
            signing.parse_authorization(request.header_params["Authorization"])

    def test_is_signature_scheme(self) -> None:
        assert signing.is_signature_scheme("SDK-HMAC-SHA256 Access=…")
        assert signing.is_signature_scheme("V11-HMAC-SHA256 Credential=…")
        assert not signing.is_signature_scheme("Bearer abc")
        assert not signing.is_signature_scheme(None)


class TestChecks:
    NOW = dt.datetime(2024, 6, 1, 10, 11, 12, tzinfo=dt.UTC)

    @pytest.mark.parametrize("seconds", [0, 899, 900, -900])
    def test_date_within_15_minutes(self, seconds: int) -> None:
        value = (self.NOW + dt.timedelta(seconds=seconds)).strftime(signing.DATE_FORMAT)
        assert signing.check_date(value, self.NOW) == value

    @pytest.mark.parametrize("seconds", [901, -901, 86400])
    def test_date_skew_is_refused(self, seconds: int) -> None:
        value = (self.NOW + dt.timedelta(seconds=seconds)).strftime(signing.DATE_FORMAT)
        with pytest.raises(ApigError, match="15 minutes"):
            signing.check_date(value, self.NOW)

    @pytest.mark.parametrize("value", [None, "", "2024-06-01T10:11:12Z", "20240601T101112", "2024061T101112Z",
                                       "20240601T1011120Z"])
    def test_date_format(self, value: str | None) -> None:
        with pytest.raises(ApigError, match="X-Sdk-Date"):
            signing.check_date(value, self.NOW)

    def _auth(self, names: str) -> signing.Authorization:
        return signing.parse_authorization(f"SDK-HMAC-SHA256 Access=AK1, SignedHeaders={names}, Signature={'a' * 64}")

    def test_x_sdk_date_must_be_signed(self) -> None:
        with pytest.raises(ApigError, match="x-sdk-date must be one of the signed headers"):
            signing.check_signed_headers(self._auth("host"), {"host": b"h", "x-sdk-date": b"d"})

    def test_scoping_headers_must_be_signed_when_present(self) -> None:
        present = {"host": b"h", "x-sdk-date": b"d", "x-project-id": b"p"}
        with pytest.raises(ApigError, match="x-project-id must be signed"):
            signing.check_signed_headers(self._auth("host;x-sdk-date"), present)
        signing.check_signed_headers(self._auth("host;x-project-id;x-sdk-date"), present)

    def test_signed_header_must_be_present(self) -> None:
        with pytest.raises(ApigError, match="content-type is not in the request"):
            signing.check_signed_headers(self._auth("content-type;x-sdk-date"), {"x-sdk-date": b"d"})

    def test_v11_scope_must_match_date_and_region(self) -> None:
        auth = signing.parse_authorization(
            f"V11-HMAC-SHA256 Credential=AK1/20240601/local-1/ims, SignedHeaders=x-sdk-date, Signature={'a' * 64}")
        signing.check_scope(auth, "20240601T101112Z", "local-1")
        with pytest.raises(ApigError, match="date in Credential"):
            signing.check_scope(auth, "20240602T000000Z", "local-1")
        with pytest.raises(ApigError, match="region in Credential"):
            signing.check_scope(auth, "20240601T101112Z", "cn-north-4")


class TestCanonicalForms:
    @pytest.mark.parametrize(("path", "uri"), [
        ("/v2/cloudimages", "/v2/cloudimages/"),
        ("/v2/cloudimages/", "/v2/cloudimages/"),
        ("/", "/"),
        ("/v2/images/a b~c", "/v2/images/a%20b~c/"),
        ("/obs/bkt/dir/é.qcow2", "/obs/bkt/dir/%C3%A9.qcow2/"),
    ])
    def test_uri(self, path: str, uri: str) -> None:
        assert signing.canonical_uri(path) == uri

    def test_query_sorted_and_encoded(self) -> None:
        pairs = signing.query_pairs("b=2&a=%20x&a=1&c&d=%7E+")
        assert signing.canonical_query(pairs) == "a=%20x&a=1&b=2&c=&d=~%2B"
        assert signing.canonical_query([]) == ""
