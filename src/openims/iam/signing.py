"""AK/SK request signatures, computed exactly as the official Huawei Cloud SDK computes them.

The steps are recorded in ``reference/sdk-wire.md``: a canonical request (method, canonical URI,
canonical query, the signed headers, the payload hash) is hashed into a string to sign, which is
signed with an HMAC keyed by the secret key. Three variants are understood:

- ``SDK-HMAC-SHA256`` — the SDK's default;
- ``SDK-HMAC-SM3`` — the same steps with SM3 as hash and HMAC digest;
- ``V11-HMAC-SHA256`` — the HMAC key is derived per day, region and service with HKDF-SHA256.

Pure functions: no HTTP framework, no database. The server recomputes the signature from the
request as it was received and compares in constant time; ``sign`` produces the same header a
client would send (tests check it against the SDK's own output).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import quote, unquote

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from openims.errors import ApigError


class Algorithm(StrEnum):
    HMAC_SHA256 = "SDK-HMAC-SHA256"  # the SDK's default
    HMAC_SM3 = "SDK-HMAC-SM3"  # same steps, SM3 for hash and HMAC
    V11_HMAC_SHA256 = "V11-HMAC-SHA256"  # SHA-256 with a key derived per day/region/service (HKDF)


# Schemes the SDK can be configured for that this service does not verify (key pairs derived from AK/SK).
UNSUPPORTED = ("SDK-ECDSA-P256-SHA256", "SDK-SM2-SM3")
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
MAX_SKEW = dt.timedelta(minutes=15)
# The derived key of V11 is 32 bytes of HKDF output, used as its 64-character hex text.
_DERIVED_KEY_BYTES = 32

_ACCESS_KEY = re.compile(r"^[A-Za-z0-9]{1,64}$")
_HEADER_NAME = re.compile(r"^[a-z0-9!#$%&'*+.^_`|~-]+$")
_HEX_SIGNATURE = re.compile(r"^[0-9a-fA-F]{64}$")
_SCOPE = re.compile(r"^(\d{8})/([A-Za-z0-9_-]{1,64})/([A-Za-z0-9_-]{1,64})$")

# Headers that change what a request means: when present they must be covered by the signature,
# or a captured request could be replayed against another project or with another token.
MUST_SIGN_WHEN_PRESENT = ("x-project-id", "x-domain-id", "x-security-token", "x-sdk-content-sha256",
                          "x-sdk-content-sm3")


def refused(reason: str) -> ApigError:
    """A 401 in the gateway's words; ``reason`` says which check failed (never a secret)."""
    return ApigError(f"Incorrect IAM authentication information: {reason}")


# ---------------------------------------------------------------- hashes


def _hash_name(algorithm: Algorithm) -> str:
    return "sm3" if algorithm is Algorithm.HMAC_SM3 else "sha256"


def new_hash(algorithm: Algorithm) -> Any:
    """A fresh hash object of the algorithm's payload/canonical-request hash."""
    return hashlib.new(_hash_name(algorithm))


def hex_digest(algorithm: Algorithm, data: bytes) -> str:
    h = new_hash(algorithm)
    h.update(data)
    digest: str = h.hexdigest()
    return digest


def empty_hash(algorithm: Algorithm) -> str:
    return hex_digest(algorithm, b"")


def content_hash_header(algorithm: Algorithm) -> str:
    """The header a client uses to state the payload hash itself (e.g. ``UNSIGNED-PAYLOAD``)."""
    return "x-sdk-content-sm3" if algorithm is Algorithm.HMAC_SM3 else "x-sdk-content-sha256"


# ---------------------------------------------------------------- Authorization header


@dataclass(frozen=True)
class Authorization:
    algorithm: Algorithm
    access_key: str
    signed_headers: tuple[str, ...]
    signature: str
    # V11 only: "<YYYYMMDD>/<region>/<service>", the HKDF info of the derived key.
    scope: str | None = None


def is_signature_scheme(value: str | None) -> bool:
    """Whether an ``Authorization`` header is meant as an SDK signature (even an unsupported one)."""
    return value is not None and value.lstrip().upper().startswith(("SDK-", "V11-"))


def parse_authorization(value: str) -> Authorization:
    scheme, _, rest = value.strip().partition(" ")
    if scheme in UNSUPPORTED:
        raise refused(f"the signing algorithm {scheme} is not supported; use SDK-HMAC-SHA256, SDK-HMAC-SM3 "
                      "or V11-HMAC-SHA256.")
    try:
        algorithm = Algorithm(scheme)
    except ValueError:
        raise refused(f"unknown signing algorithm {scheme[:40]!r}.") from None
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, val = part.strip().partition("=")
        if not sep or key in fields:
            raise refused("the Authorization header is malformed.")
        fields[key] = val.strip()
    cred_key = "Credential" if algorithm is Algorithm.V11_HMAC_SHA256 else "Access"
    if set(fields) != {cred_key, "SignedHeaders", "Signature"}:
        raise refused(f"the Authorization header must carry {cred_key}=, SignedHeaders= and Signature=.")
    scope: str | None = None
    access = fields[cred_key]
    if algorithm is Algorithm.V11_HMAC_SHA256:
        access, _, scope = access.partition("/")
        if not _SCOPE.fullmatch(scope):
            raise refused("Credential must be <AK>/<YYYYMMDD>/<region>/<service>.")
    if not _ACCESS_KEY.fullmatch(access):
        raise refused("the access key in the Authorization header is malformed.")
    names = tuple(fields["SignedHeaders"].split(";"))
    if not all(_HEADER_NAME.fullmatch(n) for n in names) or len(set(names)) != len(names) or "authorization" in names:
        raise refused("SignedHeaders must list distinct lower-case header names, without authorization.")
    if not _HEX_SIGNATURE.fullmatch(fields["Signature"]):
        raise refused("Signature must be 64 hexadecimal characters.")
    return Authorization(algorithm, access, names, fields["Signature"].lower(), scope)


def check_date(value: str | None, now: dt.datetime) -> str:
    """The ``X-Sdk-Date`` value if it is well formed and within 15 minutes of ``now``."""
    if not value:
        raise refused("the X-Sdk-Date header is missing.")
    try:
        when = dt.datetime.strptime(value, DATE_FORMAT).replace(tzinfo=dt.UTC)
    except ValueError:
        when = None
    # strptime tolerates unpadded fields; the string to sign uses the header text, so insist on one spelling.
    if when is None or when.strftime(DATE_FORMAT) != value:
        raise refused("X-Sdk-Date must be a UTC time formatted YYYYMMDDTHHMMSSZ.")
    if abs(now - when) > MAX_SKEW:
        raise refused("the request has expired: X-Sdk-Date is more than 15 minutes away from the server time.")
    return value


def check_signed_headers(auth: Authorization, present: Mapping[str, bytes]) -> None:
    signed = set(auth.signed_headers)
    if "x-sdk-date" not in signed:
        raise refused("x-sdk-date must be one of the signed headers.")
    missing = [n for n in auth.signed_headers if n not in present]
    if missing:
        raise refused(f"the signed header {missing[0]} is not in the request.")
    unsigned = [n for n in MUST_SIGN_WHEN_PRESENT if n in present and n not in signed]
    if unsigned:
        raise refused(f"the header {unsigned[0]} must be signed.")


def check_scope(auth: Authorization, sdk_date: str, region: str) -> None:
    """V11: the derived key's scope must name the request's day and this deployment's region."""
    if auth.scope is None:
        return
    match = _SCOPE.fullmatch(auth.scope)
    assert match is not None  # parse_authorization checked the shape
    if match.group(1) != sdk_date[:8]:
        raise refused("the date in Credential is not the date of X-Sdk-Date.")
    if match.group(2) != region:
        raise refused(f"the region in Credential is not this service's region ({region}).")


# ---------------------------------------------------------------- canonical request


def _encode(value: str) -> str:
    # Only A-Z a-z 0-9 - _ . ~ stay as they are (quote's always-safe set plus '~').
    return quote(value, safe="~")


def canonical_uri(path: str) -> str:
    """``path`` percent-decoded; each segment re-encoded; always ending with '/'."""
    uri = "/".join(_encode(segment) for segment in path.split("/"))
    return uri if uri.endswith("/") else uri + "/"


def query_pairs(raw_query: str) -> list[tuple[str, str]]:
    """The (key, value) pairs of a raw query string, percent-decoded ('+' is a literal plus)."""
    pairs = []
    for part in raw_query.split("&"):
        if part:
            key, _, value = part.partition("=")
            pairs.append((unquote(key), unquote(value)))
    return pairs


def canonical_query(pairs: Sequence[tuple[str, str]]) -> str:
    # Sorted on the decoded pairs, as the SDK sorts its parameters before encoding them.
    return "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(pairs))


def canonical_request(method: str, path: str, pairs: Sequence[tuple[str, str]], headers: Mapping[str, bytes],
                      signed_headers: Sequence[str], payload_hash: str) -> bytes:
    """Header values are the raw bytes received (UTF-8 for the SDK), stripped of outer whitespace."""
    header_block = b"".join(name.encode("ascii") + b":" + headers[name].strip() + b"\n" for name in signed_headers)
    return b"\n".join([
        method.upper().encode("ascii"),
        canonical_uri(path).encode("ascii"),
        canonical_query(pairs).encode("ascii"),
        header_block,
        ";".join(signed_headers).encode("ascii"),
        payload_hash.encode("ascii"),
    ])


def string_to_sign(algorithm: Algorithm, sdk_date: str, creq: bytes, scope: str | None = None) -> bytes:
    lines = [algorithm.value, sdk_date]
    if algorithm is Algorithm.V11_HMAC_SHA256:
        lines.append(scope or "")
    lines.append(hex_digest(algorithm, creq))
    return "\n".join(lines).encode("utf-8")


def derive_v11_key(access_key: str, secret_key: str, scope: str) -> bytes:
    """HKDF-SHA256(salt = AK, input = SK, info = scope), as lower-case hex text (the SDK's HMAC key)."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=_DERIVED_KEY_BYTES, salt=access_key.encode("utf-8"),
                info=scope.encode("utf-8"))
    return hkdf.derive(secret_key.encode("utf-8")).hex().encode("ascii")


def signature(algorithm: Algorithm, access_key: str, secret_key: str, sts: bytes, scope: str | None = None) -> str:
    if algorithm is Algorithm.V11_HMAC_SHA256:
        key = derive_v11_key(access_key, secret_key, scope or "")
    else:
        key = secret_key.encode("utf-8")
    return hmac.new(key, sts, _hash_name(algorithm)).hexdigest()


# ---------------------------------------------------------------- verify / sign


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    # Percent-decoded, as the client sent it: with any /identity or /image prefix, which the client
    # signed even though the service routes without it.
    path: str
    query: str  # raw query string
    headers: Mapping[str, bytes]  # lower-case name → raw value (repeated headers joined by ",")
    # What the payload hash may be: the body's digest, a declared value, or both when they may differ
    # (an empty body is signed with the empty hash even when a content-hash header is present).
    payload_hashes: tuple[str, ...]


def verify(auth: Authorization, secret_key: str, request: ReceivedRequest, sdk_date: str) -> bool:
    """Whether the request carries the signature ``secret_key`` makes for it; constant-time comparison."""
    pairs = query_pairs(request.query)
    ok = False
    for payload_hash in request.payload_hashes:
        creq = canonical_request(request.method, request.path, pairs, request.headers, auth.signed_headers,
                                 payload_hash)
        sts = string_to_sign(auth.algorithm, sdk_date, creq, auth.scope)
        expected = signature(auth.algorithm, auth.access_key, secret_key, sts, auth.scope)
        ok |= hmac.compare_digest(expected, auth.signature)
    return ok


def sign(*, algorithm: Algorithm, access_key: str, secret_key: str, method: str, path: str, query: str,
         headers: Mapping[str, str], body: bytes, scope: str | None = None) -> str:
    """The ``Authorization`` value for a request; every header given (one must be X-Sdk-Date) is signed."""
    lowered = {k.lower(): v.encode("utf-8") for k, v in headers.items()}
    names = sorted(lowered)
    declared = lowered.get(content_hash_header(algorithm))
    if not body:
        payload_hash = empty_hash(algorithm)
    elif declared is not None:
        payload_hash = declared.decode("ascii").strip()
    else:
        payload_hash = hex_digest(algorithm, body)
    creq = canonical_request(method, path, query_pairs(query), lowered, names, payload_hash)
    sts = string_to_sign(algorithm, lowered["x-sdk-date"].decode("ascii"), creq, scope)
    sig = signature(algorithm, access_key, secret_key, sts, scope)
    if algorithm is Algorithm.V11_HMAC_SHA256:
        return f"{algorithm.value} Credential={access_key}/{scope}, SignedHeaders={';'.join(names)}, Signature={sig}"
    return f"{algorithm.value} Access={access_key}, SignedHeaders={';'.join(names)}, Signature={sig}"
