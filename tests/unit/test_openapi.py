"""The generated OpenAPI document is truthful enough for a fuzzer (issue 16, item 5).

Every operation declares the ``{param}``s of its path, a schema for each success answer (or no body
at all: 204, HEAD), a request body schema when it takes a body, and a tag. A route that builds its
answer by hand or reads its body itself says so in its decorator (api.openapi_docs); a new route that
does not fails here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openims.api.app import create_app
from openims.runtime import build_runtime
from tests.conftest import make_settings

# POST/PUT/PATCH that take no body: the path says everything (Keystone's grants and memberships, Glance's
# tag and image actions, bucket creation). A new entry here is a deliberate decision.
BODYLESS = {
    ("post", "/v2/images/{image_id}/actions/deactivate"),
    ("post", "/v2/images/{image_id}/actions/reactivate"),
    ("put", "/v2/images/{image_id}/tags/{tag}"),
    ("post", "/v2/metadefs/namespaces/{namespace}/tags/{tag_name}"),
    ("put", "/obs/{bucket}"),
    ("put", "/v3/groups/{group_id}/users/{user_id}"),
    ("put", "/v3/projects/{project_id}/groups/{group_id}/roles/{role_id}"),
    ("put", "/v3/domains/{domain_id}/groups/{group_id}/roles/{role_id}"),
    ("put", "/v3/OS-INHERIT/domains/{domain_id}/groups/{group_id}/roles/{role_id}/inherited_to_projects"),
    ("put", "/v3/projects/{project_id}/users/{user_id}/roles/{role_id}"),
    ("put", "/v3/domains/{domain_id}/users/{user_id}/roles/{role_id}"),
    ("put", "/v3/OS-INHERIT/domains/{domain_id}/users/{user_id}/roles/{role_id}/inherited_to_projects"),
}
_SUCCESS = re.compile(r"2\d\d|300")


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data: Path = tmp_path_factory.mktemp("openapi")
    rt = build_runtime(make_settings(data, f"sqlite:///{data / 'openims.db'}"))
    try:
        yield create_app(rt).openapi()
    finally:
        rt.close()


def _operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in ("get", "put", "post", "delete", "patch", "head", "options"):
                yield method, path, op


def _problems(method: str, path: str, op: dict[str, Any]) -> list[str]:
    problems = []
    declared = {p["name"] for p in op.get("parameters", []) if p.get("in") == "path"}
    problems += [f"path parameter {{{name}}} not declared" for name in re.findall(r"{([^}]+)}", path)
                 if name not in declared]
    successes = {code: r for code, r in op.get("responses", {}).items() if _SUCCESS.fullmatch(code)}
    if not successes:
        problems.append("no success response")
    for code, response in successes.items():
        # No content at all is a declared empty body; a media type must carry a real schema ({} is FastAPI's
        # "anything" for a handler returning a Response it built itself).
        for media, content in (response.get("content") or {}).items():
            said = set(content.get("schema") or {}) - {"title", "description"}
            if not said and media != "application/octet-stream":
                problems.append(f"{code} {media}: no schema")
    if method in ("post", "put", "patch") and (method, path) not in BODYLESS:
        body = op.get("requestBody")
        if not body or not any(c.get("schema") for c in body.get("content", {}).values()):
            problems.append("no request body schema")
    if not op.get("tags"):
        problems.append("no tag")
    return problems


def test_every_operation_is_described(document: dict[str, Any]) -> None:
    found = {f"{method.upper()} {path}": problems for method, path, op in _operations(document)
             if (problems := _problems(method, path, op))}
    assert not found, "\n".join(f"{op}: {', '.join(p)}" for op, p in sorted(found.items()))


def test_bodyless_list_names_real_operations(document: dict[str, Any]) -> None:
    ops = {(method, path) for method, path, _ in _operations(document)}
    assert ops >= BODYLESS, BODYLESS - ops


def test_the_three_families_are_tagged_apart(document: dict[str, Any]) -> None:
    tags = {method.upper() + " " + path: set(op["tags"]) for method, path, op in _operations(document)}
    assert "ims" in tags["GET /v2/cloudimages"]
    assert "glance" in tags["GET /v2/images"]
    assert tags["POST /v3/auth/tokens"] & {"iam", "iam-tokens"}
    assert "docs" not in document["paths"]  # /docs is served, not an operation


def test_query_parameters_read_by_hand_are_declared(document: dict[str, Any]) -> None:
    for path, names in (("/v2/images", {"limit", "marker", "sort_key", "name", "owner", "tag", "size_min"}),
                        ("/v2/cloudimages", {"limit", "marker", "id", "__imagetype", "min_disk", "created_at"}),
                        ("/v1/cloudimages/tags", {"limit", "page", "tag", "__os_type", "min_ram"}),
                        ("/v2/metadefs/namespaces", {"limit", "marker", "visibility", "resource_types"}),
                        ("/v1/{project_id}/jobs", {"limit", "marker", "status", "job_type"})):
        declared = {p["name"] for p in document["paths"][path]["get"].get("parameters", []) if p["in"] == "query"}
        assert names <= declared, (path, names - declared)


def test_central_errors_are_declared_in_the_family_shape(document: dict[str, Any]) -> None:
    # Request validation is answered 400 in the family's shape (api.errors), never FastAPI's 422.
    for method, path, op in _operations(document):
        assert "422" not in op["responses"], (method, path)
        assert "503" in op["responses"], (method, path)
    users = document["paths"]["/v3/users/{user_id}"]["get"]["responses"]
    assert users["404"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/KeystoneError"}
    image = document["paths"]["/v2/images/{image_id}"]["get"]["responses"]
    assert {"401", "403", "404"} <= set(image)
    assert image["401"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/KeystoneError"}
    assert {"ImsError", "KeystoneError"} <= set(document["components"]["schemas"])
    assert "401" not in document["paths"]["/"]["get"]["responses"]  # version discovery needs no token


def test_constraints_read_by_hand_are_declared(document: dict[str, Any]) -> None:
    for method in ("get", "head", "delete"):
        params = document["paths"]["/v3/auth/tokens"][method]["parameters"]
        assert any(p["name"] == "X-Subject-Token" and p["in"] == "header" and p["required"] for p in params)
    created = document["paths"]["/v2/metadefs/namespaces/{namespace}/properties"]["post"]["requestBody"]
    assert created["content"]["application/json"]["schema"]["required"] == ["name", "title", "type"]


def _param(doc: dict[str, Any], method: str, path: str, name: str) -> dict[str, Any]:
    return next(p["schema"] for p in doc["paths"][path][method]["parameters"] if p["name"] == name)


def test_name_rules_checked_by_hand_are_declared_from_the_code(document: dict[str, Any]) -> None:
    # The rules are the code's own constants (not copies), declared without validating (the routes' errors
    # keep their codes: IMG.0109 for a bucket name, Keystone's 400 for an IAM name).
    from openims.iam import accounts, admin
    from openims.objects.base import BUCKET_NAME, BUCKET_NAME_LENGTH, InvalidObjectName, check_bucket_name

    low, high = BUCKET_NAME_LENGTH
    for method, path in (("put", "/obs/{bucket}"), ("get", "/obs/{bucket}"), ("put", "/obs/{bucket}/{key}")):
        schema = _param(document, method, path, "bucket")
        assert (schema["pattern"], schema["minLength"], schema["maxLength"]) == (BUCKET_NAME.pattern, low, high)
    # The declared rule is never stricter than the check: what it refuses, check_bucket_name refuses too.
    for name in ("ab", "a" * (high + 1), "Abc", "-abc", "abc-", "a_b", "ab c"):
        assert not re.search(BUCKET_NAME.pattern, name) or not low <= len(name) <= high
        with pytest.raises(InvalidObjectName):
            check_bucket_name(name)
    assert check_bucket_name("a" * high) and check_bucket_name("a.b-1")

    schemas = document["components"]["schemas"]
    users = [_non_null(schemas[m]["properties"]["name"]) for m in ("UserCreate", "UserUpdate")]
    assert all((u["pattern"], u["minLength"], u["maxLength"]) == (admin.USER_NAME.pattern, *admin.USER_NAME_LENGTH)
               for u in users)
    domains = [_non_null(schemas[m]["properties"]["name"]) for m in ("DomainCreate", "DomainUpdate")]
    assert all(d["pattern"] == accounts.DOMAIN_NAME.pattern for d in domains)
    projects = [_non_null(schemas[m]["properties"]["name"]) for m in ("ProjectCreate", "ProjectUpdate")]
    assert all(p["pattern"] == admin.PROJECT_NAME and p["maxLength"] == admin.MAX_NAME for p in projects)


_NAMES = ("ok", "a b", "a.b-c_d", " a", "a ", "a\tb", "a/b", "é-ok", "", "x" * 128, "x" * 129, "a\n")
_TAGS = ("k", "k.v", ".v", "k.", "k.v.w", "k v", "k" * 36 + ".v", "k" * 37, "k." + "v" * 43, "k." + "v" * 44)


def test_ims_image_rules_are_declared_as_checked(document: dict[str, Any]) -> None:
    # IMS creation's required fields and rules are checked by hand (IMG.0013, IMG.0017, IMG.0055, …):
    # the document says them, and the declared patterns accept exactly what the checks accept.
    from openims.catalog import validation
    from openims.errors import ImsBadRequest

    schemas = document["components"]["schemas"]
    system, data = schemas["CreateImageWire"], schemas["CreateDataImageWire"]
    for body, disk in ((system, validation.SYSTEM_DISK_GB), (data, validation.DATA_DISK_GB)):
        assert {"name", "image_url", "min_disk"} <= set(body["required"])
        size = _non_null(body["properties"]["min_disk"])
        assert (size["minimum"], size["maximum"]) == disk
        assert _non_null(body["properties"]["os_type"])["enum"] == list(validation.OS_TYPES)
    assert _non_null(system["properties"]["type"])["enum"] == list(validation.IMAGE_TYPES)
    assert _non_null(data["properties"]["data_images"])["maxItems"] == 0
    name = _non_null(system["properties"]["name"])
    assert (name["pattern"], name["maxLength"]) == (validation.IMAGE_NAME_PATTERN, validation.IMAGE_NAME_MAX)

    def accepted(check: Any, value: Any) -> bool:
        try:
            check(value)
        except ImsBadRequest:
            return False
        return True

    for text in _NAMES:
        # Read as JSON Schema reads a pattern ("$" is the end): validation.image_name refuses "foo\n".
        declared = bool(re.match(_ecma(name)["pattern"], text)) and len(text) <= name["maxLength"]
        assert declared == accepted(validation.image_name, text), text
    from openims.catalog import lifecycle, quotas

    quota = schemas["QuotaResourceWire"]["properties"]["quota"]
    assert (_non_null(quota)["minimum"], _non_null(quota)["maximum"]) == (quotas.MIN_IMAGES, quotas.MAX_IMAGES)
    file_format = _non_null(schemas["ExportWire"]["properties"]["file_format"])["pattern"]
    assert all(re.match(file_format, f) and re.match(file_format, f.upper()) for f in lifecycle.EXPORT_FORMATS)
    assert not re.match(file_format, "zvhd2")
    tag = _non_null(system["properties"]["tags"])["items"]
    for text in _TAGS:
        assert bool(re.match(_ecma(tag)["pattern"], text)) == accepted(lambda t: validation.tags([t], None), text), text


def _non_null(schema: dict[str, Any]) -> dict[str, Any]:
    return next(s for s in schema.get("anyOf", [schema]) if s.get("type") != "null")


def _accepted(check: Any, *args: Any) -> bool:
    from openims.errors import ServiceError

    try:
        check(*args)
    except ServiceError:
        return False
    return True


def _matches(schema: dict[str, Any], text: str) -> bool:
    low, high = schema.get("minLength", 0), schema.get("maxLength", len(text))
    return bool(re.search(schema["pattern"], text)) and low <= len(text) <= high


def test_member_rules_are_declared_as_checked(document: dict[str, Any]) -> None:
    # members.submit_batch and members.answer check by hand (IMG.0001, IMG.0067).
    from openims.catalog import members
    from openims.catalog.images import ALL_STATUSES

    schemas = document["components"]["schemas"]
    for model, lists in (("MemberBatchWire", ("images", "projects")), ("MemberAnswerBatchWire", ("images",))):
        for name in lists:
            ids = schemas[model]["properties"][name]
            assert ids["minItems"] == 1 and ids["items"]["maxLength"] == members._ID_MAX
    for model, glance in (("MemberAnswerBatchWire", False), ("MemberAnswerWire", True)):
        declared = schemas[model]["properties"]["status"]["enum"]
        for status in (*ALL_STATUSES, "", "Accepted", "deleted"):
            assert (status in declared) == _accepted(lambda s, g=glance: members.answer(s, glance=g), status), status


_TAG_PARTS = ("k", "k-1_x", " k ", "k\t", "", " ", "k.v", "k v", "é", "k" * 36, "k" * 37, " " + "k" * 36, "k/")


def test_tag_rules_are_declared_as_checked(document: dict[str, Any]) -> None:
    # catalog.tags checks by hand (IMG.0115, IMG.0001): the declared patterns accept exactly what it accepts.
    from openims.catalog import tags

    schemas = document["components"]["schemas"]
    pair = schemas["TagWire"]["properties"]
    for text in _TAG_PARTS:
        assert _matches(pair["key"], text) == _accepted(tags.checked_pair, text, "v"), text
        assert _matches(pair["value"], text) == _accepted(tags.checked_pair, "k", text), text
        assert _matches(pair["value"], text * 4) == _accepted(tags.checked_pair, "k", text * 4), text
    tag = _non_null(schemas["PutTagWire"]["properties"]["tag"])
    for text in (*_TAGS, *_TAG_PARTS, "k.", "k..v"):
        assert _matches(tag, text) == _accepted(tags.checked_tag_string, text), text
    native = _param(document, "put", "/v2/images/{image_id}/tags/{tag}", "tag")
    for text in ("k", "k-1_x", "k.v", "k v", "", "k" * 255, "k" * 256, "é"):
        assert _matches(native, text) == _accepted(tags.checked_native, text), text
    batch = schemas["BatchTagsWire"]
    assert batch["properties"]["action"]["enum"] == ["create", "delete"]
    assert batch["else"]["properties"]["tags"]["items"]["properties"]["key"]["maxLength"] == tags.DELETE_KEY_MAX
    query = schemas["ResourceQueryWire"]["properties"]
    assert _non_null(query["tags"])["maxItems"] == tags.QUERY_MAX_KEYS
    condition = schemas["ConditionWire"]["properties"]
    assert (condition["key"]["maxLength"], condition["values"]["maxItems"]) == (tags.QUERY_KEY_MAX,
                                                                                 tags.QUERY_MAX_VALUES)
    limit = next(b for b in query["limit"]["anyOf"] if b["type"] == "integer")
    for n in (0, 1, 1000, 1001):
        q = tags.ResourceQuery(action="filter", limit=n)
        assert (limit["minimum"] <= n <= limit["maximum"]) == _accepted(tags.check_resource_query, q), n
    digits = next(b for b in query["limit"]["anyOf"] if b["type"] == "string")
    from openims.api.params import parse_int

    for text in ("5", " 5 ", "+5", "-5", "5.0", "", "x", "1" * 19, "1" * 20):
        assert bool(re.search(digits["pattern"], text)) == _accepted(
            lambda t: parse_int("limit", t, low=-(2 ** 64), high=2 ** 64), text), text


def test_trace_filters_are_declared_as_checked(document: dict[str, Any]) -> None:
    from openims.api import audit_routes

    params = {p["name"]: p for p in document["paths"]["/v3/{project_id}/traces"]["get"]["parameters"]}
    assert params["trace_type"]["required"] and params["trace_type"]["schema"]["enum"] == ["system"]
    assert "x-openims-required" not in params["trace_type"]["schema"]
    assert params["trace_rating"]["schema"]["enum"] == list(audit_routes._RATINGS)
    assert params["tracker_name"]["schema"]["enum"] == list(audit_routes.TRACKERS)
    for name in ("limit", "from", "to"):
        # The syntax int() reads (empty: left out); the range is the description's and _int's.
        pattern = params[name]["schema"]["pattern"]
        for text in ("0", "12", " 12 ", "+3", "1_000", "-1", "1.5", "x", "", "0x10", "1__0", "_1"):
            assert bool(re.search(pattern, text)) == (text == "" or _int_syntax(text)), text
    assert audit_routes._int("from", "12") == 12
    with pytest.raises(audit_routes._BadParameter):
        audit_routes._int("from", "-1")


def _int_syntax(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def test_access_key_and_token_rules_are_declared_as_checked(document: dict[str, Any]) -> None:
    from openims.api import iam_wire
    from openims.iam import access_keys

    schemas = document["components"]["schemas"]
    for model in ("CredentialCreate", "CredentialUpdate"):
        description = _non_null(schemas[model]["properties"]["description"])
        for text in ("ok", "", "a\tb", "a\nb", "\x7f", "é", "x" * 255, "x" * 256):
            assert _matches(description, text) == _accepted(access_keys._check_description, text), text
    assert _non_null(schemas["CredentialUpdate"]["properties"]["status"])["enum"] == list(access_keys.STATUSES)
    for model in ("TokenIdentity", "SecurityTokenIdentity"):
        duration = _non_null(schemas[model]["properties"]["duration_seconds"])
        assert (duration["minimum"], duration["maximum"]) == (access_keys.TEMPORARY_MIN_SECONDS,
                                                              access_keys.TEMPORARY_MAX_SECONDS)
    assert schemas["SecurityTokenIdentity"]["properties"]["methods"]["items"]["enum"] == ["token"]
    methods = schemas["Identity"]["properties"]["methods"]
    assert methods["contains"]["enum"] == list(iam_wire.AUTH_METHODS)


def test_ims_patch_paths_are_declared_as_checked(document: dict[str, Any]) -> None:
    # lifecycle.update_image's table, its operator's rows and the extension attributes it takes.
    from openims.catalog import lifecycle, patch

    body = document["paths"]["/v2/cloudimages/{image_id}"]["patch"]["requestBody"]
    item = body["content"]["application/json"]["schema"]["items"]
    assert item["properties"]["op"]["enum"] == list(patch.OPS)
    pattern = item["properties"]["path"]["pattern"]
    names = (*lifecycle.RULES, *lifecycle.OPERATOR_RULES, *lifecycle.READ_ONLY, "__os_bit", "__anything", "_x",
             "custom", "Custom", "a:b.c-d", "a b", "", "x" * 255, "x" * 256, "name/x")
    for name in names:
        known = name in lifecycle.RULES or name in lifecycle.OPERATOR_RULES
        assert bool(re.search(pattern, "/" + name)) == (known or _accepted(lifecycle._attribute, name)), name
    assert not re.search(pattern, "name")


def test_metadef_rules_are_declared_as_checked(document: dict[str, Any]) -> None:
    # catalog.metadefs.definitions checks the bodies by hand: the document names its keys, types and limits.
    from openims.catalog.metadefs import definitions

    def body(method: str, path: str) -> dict[str, Any]:
        return document["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]

    namespaces = "/v2/metadefs/namespaces"
    for method, path in (("post", namespaces), ("put", namespaces + "/{namespace}")):
        created = body(method, path)
        assert set(created["properties"]) == definitions._NAMESPACE_KEYS and not created["additionalProperties"]
        assert _non_null(created["properties"]["visibility"])["enum"] == list(definitions.VISIBILITIES)
        assert _non_null(created["properties"]["owner"])["maxLength"] == definitions.OWNER_MAX
        assert _non_null(created["properties"]["description"])["maxLength"] == definitions.DESCRIPTION_MAX
    prop = body("post", namespaces + "/{namespace}/properties")
    assert set(prop["properties"]) == definitions.PROPERTY_KEYS | {"name"} and not prop["additionalProperties"]
    assert prop["properties"]["type"]["enum"] == list(definitions.PROPERTY_TYPES)
    inner = _non_null(body("post", namespaces)["properties"]["properties"])["additionalProperties"]
    assert set(inner["properties"]) == definitions.PROPERTY_KEYS and inner["required"] == ["type", "title"]
    name = prop["properties"]["name"]
    for text in ("ok", "a b", " ", "", "a/b", "a\x00", "a\x7f", "é", "\t", "x" * 80, "x" * 81, " a "):
        assert _matches(name, text) == _accepted(definitions.name, text, "name"), repr(text)


def test_import_body_and_member_paging_are_declared_as_checked(document: dict[str, Any]) -> None:
    from openims.api.openapi_docs import INT_TEXT
    from openims.catalog import glance_import

    body = document["paths"]["/v2/images/{image_id}/import"]["post"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    method = schema["properties"]["method"]
    assert method["properties"]["name"]["enum"] == list(glance_import.METHODS)
    assert method["if"]["properties"]["name"]["const"] == glance_import.WEB_DOWNLOAD
    assert method["then"]["required"] == ["uri"]
    assert set(schema["not"]["required"]) == {"stores", "all_stores"}
    limit = _param(document, "get", "/v1/{project_id}/cloudimages/{image_id}/members", "limit")
    assert limit["pattern"] == INT_TEXT


def test_os_version_is_declared_as_checked(document: dict[str, Any]) -> None:
    # validation.os_version: a known version in any case, trimmed (empty: none given).
    from openims.catalog import validation
    from openims.catalog.os_versions import all_versions

    schemas = document["components"]["schemas"]
    rules = [_non_null(schemas[m]["properties"]["os_version"])
             for m in ("CreateImageWire", "CreateDataImageWire", "QuickImportWire")]
    assert all(r == rules[0] for r in rules)
    known = [osv.os_version for osv in all_versions()]
    samples = [*known, *(k.upper() for k in known), *(f" {k.lower()}\t" for k in known[::10]), "", "  ", "Other",
               known[0] + "x", "x" + known[0], known[0].replace(" ", "  "), f"{known[0]}|{known[1]}"]
    for text in samples:
        assert bool(re.search(rules[0]["pattern"], text)) == _accepted(validation.os_version, text), text


# ---------------------------------------------------------------- the image list queries

_QUERY_SAMPLES = ("", " ", "x", "0", "5", " 5 ", "+5", "-1", "1.5", "1_0", "1000", "1001", "9" * 10, "9" * 19,
                  "9" * 20, "true", "TRUE", "False", "yes", "asc", " desc ", "Asc", "name", " name ", "size",
                  "name:asc", "name:asc, id:desc ", "name:", "name:up", "name:asc:", "size,status:desc", ",",
                  "in:a,b", 'in:"a,b",c', "eq:a", "gt:2020-01-01T10:00:00Z", "gte:2020-01-01", "neq:x", "lt:",
                  "in:2020-01-01", "a:b", "private", "public", "all", "shared", "gold", "community", "accepted",
                  "pending", "rejected", "Accepted")


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    data: Path = tmp_path_factory.mktemp("listing")
    rt = build_runtime(make_settings(data, f"sqlite:///{data / 'openims.db'}"))
    try:
        yield rt
    finally:
        rt.close()


def _declared_param(schema: dict[str, Any], text: str) -> bool:
    schema = schema.get("items", schema)
    if "enum" in schema:
        return text in schema["enum"]
    return "pattern" not in schema or bool(re.search(schema["pattern"], text))


def _query_holds(document: dict[str, Any], path: str, run: Any, exact: set[str]) -> None:
    """Every sample a route accepts, its declared schema accepts (never stricter); ``exact``: both agree (an
    integer's range and a time's syntax are in the description)."""
    from openims.errors import ServiceError

    params = {p["name"]: p["schema"] for p in document["paths"][path]["get"]["parameters"]}
    assert exact <= set(params)
    for name, schema in params.items():
        for text in _QUERY_SAMPLES:
            try:
                run([(name, text)])
                accepted = True
            except ServiceError:
                accepted = False
            declared = _declared_param(schema, text)
            assert declared or not accepted, (name, text)
            if name in exact:
                assert declared == accepted, (name, text)


def _ims_request(params: list[tuple[str, str]]) -> Any:
    from types import SimpleNamespace

    from starlette.datastructures import QueryParams

    return SimpleNamespace(query_params=QueryParams(params))


def _ims_caller() -> Any:
    from types import SimpleNamespace

    return SimpleNamespace(project_id="p", can=lambda _permission: False)


def test_glance_list_query_is_declared_as_checked(document: dict[str, Any], catalog: Any) -> None:
    # glance_wire.list_query and images.list_images check it by hand (IMG.0001).
    from openims.api import glance_wire
    from openims.catalog import images

    def run(params: list[tuple[str, str]]) -> None:
        with catalog.db.transaction(readonly=True) as session:
            images.list_images(session, glance_wire.list_query(params, "p"))

    _query_holds(document, "/v2/images", run, {
        "sort_key", "sort_dir", "sort", "id", "name", "status", "disk_format", "container_format", "visibility",
        "member_status", "protected", "os_hidden", "__imagetype"})
    params = {p["name"]: p for p in document["paths"]["/v2/images"]["get"]["parameters"]}
    assert params["tag"]["schema"]["type"] == params["sort_key"]["schema"]["type"] == "array"


def test_ims_list_queries_are_declared_as_checked(document: dict[str, Any], catalog: Any) -> None:
    # GET /v2/cloudimages and GET /v1/cloudimages/tags read their queries by hand (IMG.0001, IMG.0024).
    from openims.api import ims_routes, tag_routes

    def listing(params: list[tuple[str, str]]) -> None:
        with catalog.db.transaction(readonly=True) as session:
            ims_routes._list_cloudimages(_ims_request(params), _ims_caller(), session)

    def tags(params: list[tuple[str, str]]) -> None:
        with catalog.db.transaction(readonly=True) as session:
            tag_routes.query_tags(_ims_request(params), _ims_caller(), session)

    _query_holds(document, "/v2/cloudimages", listing, {"sort_key", "sort_dir", "__imagetype", "member_status"})
    _query_holds(document, "/v1/cloudimages/tags", tags, {"sort_key", "sort_dir", "__imagetype", "member_status"})


# ---------------------------------------------------------------- Glance's image bodies

_ATTRIBUTE_NAMES = ("name", "min_disk", "tags", "__description", "__os_version", "id", "owner", "status", "size",
                    "location", "deleted", "os_glance_x", "os_glancex", "__x", "__os_type", "custom", "Custom",
                    "a:b.c-d", "a b", "", "_x", "x" * 255, "x" * 256, "foo\n", "name ", " name", "a/b", "a~b",
                    "virtual_env_type", "architecture")


def _image_values() -> Iterator[tuple[str, Any]]:
    samples = (None, "", "x", "img", " img", "img\n", "a" * 128, "a" * 129, 0, 1, -1, 2048, 2049, 2 ** 31, True,
               "true", 1.5, [], ["t"], ["k=v"], [" k = v "], ["k.v"], ["k.v.w"], ["k=v.w"], ["t\n"], ["a" * 256],
               ["a" * 37 + ".v"], [1], "bare", "qcow2", "zvhd2", "public", "private", "shared", "uefi", "bios",
               "arm", "x86", "12", "1234567890", "FusionCompute", "Ironic", "Other Linux(64 bit)",
               "Ubuntu 22.04 server 64bit", "ubuntu 22.04 server 64bit ", "<b>", "x" * 256, {"a": 1})
    for name in (*_CREATE_NAMES, "custom"):
        for value in samples:
            yield name, value


def _ecma(schema: Any) -> Any:
    """The schema with its patterns read as JSON Schema reads them (ECMA-262: "$" is the end of the text), not as
    Python's re (where "$" also matches before a final newline): the checks now use fullmatch."""
    if isinstance(schema, dict):
        return {k: v.replace("$", "(?!\n)$") if k == "pattern" and isinstance(v, str) else _ecma(v)
                for k, v in schema.items()}
    if isinstance(schema, list):
        return [_ecma(v) for v in schema]
    return schema


_CREATE_NAMES = ("name", "min_disk", "min_ram", "protected", "os_hidden", "visibility", "tags", "container_format",
                "disk_format", "__description", "__os_version", "max_ram", "architecture", "hw_firmware_type",
                "virtual_env_type", "enterprise_project_id", "id", "owner")


def test_glance_create_body_is_declared_as_checked(document: dict[str, Any], catalog: Any) -> None:
    # native.create_queued checks it by hand (IMG.0001, IMG.0003, IMG.0055, IMG.0072, IMG.0115, 403 IMG.0105, …).
    import datetime as dt

    import jsonschema

    from openims.catalog import native
    from openims.errors import ServiceError

    body = document["paths"]["/v2/images"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    body = _ecma(body)
    validator = jsonschema.Draft202012Validator(body)
    names = body["propertyNames"]["pattern"]
    for name in _ATTRIBUTE_NAMES:
        expected = name in ("id", "owner") or _accepted(native.check_writable_name, name)
        assert bool(re.search(names, name)) == expected, name
    with catalog.db.transaction() as session:
        from openims.db.models import Project

        owner = session.scalars(__import__("sqlalchemy").select(Project.id).limit(1)).first()
    for name, value in (*_image_values(), ("id", "5b0f6f5e-8e3c-4a8e-9f0e-1d2c3b4a5f60"), ("owner", owner)):
        session = catalog.db.new_session()
        try:
            native.create_queued(session, project_id=owner or "p", body={name: value}, quota=10,
                                 now=dt.datetime.now(dt.UTC), operator=True)
            accepted = True
        except ServiceError:
            accepted = False
        finally:
            session.rollback()
            session.close()
        declared = validator.is_valid({name: value})
        assert declared or not accepted, (name, value)
        if name not in ("enterprise_project_id", "owner"):
            assert declared == accepted, (name, value)


def test_glance_patch_body_is_declared_as_checked(document: dict[str, Any]) -> None:
    # glance_wire.parse_patch and native.check_writable_name check it by hand (IMG.0001, 403 IMG.0105).
    import jsonschema

    from openims.api import glance_wire
    from openims.catalog import native

    content = document["paths"]["/v2/images/{image_id}"]["patch"]["requestBody"]["content"]
    items = {media: jsonschema.Draft202012Validator(_ecma(c["schema"]["items"])) for media, c in content.items()}
    pointers = [f"/{n}" for n in _ATTRIBUTE_NAMES] + ["", "name", "/", "//name", "/name/x", "/ ", "/__a~1b", "/__a~2b",
                                           "/__a~0", "/ __x ", "/\tname\t", "/max_ram~1"]
    for media, draft in glance_wire.PATCH_MEDIA_TYPES.items():
        for op in (*glance_wire.PATCH_OPS, "move"):
            for pointer in pointers:
                raw = {"op": op, "path": pointer, "value": "x"} if draft == 10 else {op: pointer, "value": "x"}

                def check(raw: dict[str, Any] = raw, draft: int = draft) -> None:
                    (parsed,) = glance_wire.parse_patch([raw], draft)
                    native.check_writable_name(parsed.name, parsed.op)

                accepted = _accepted(check)
                if accepted and raw.get("op", op) != "remove" and pointer.strip("/ \t") in glance_wire.VALUES:
                    continue  # "x" is no value for a typed attribute: create's test covers the values
                assert items[media].is_valid(raw) == accepted, (media, op, pointer)
        no_value = {"op": "add", "path": "/custom"} if draft == 10 else {"add": "/custom"}
        assert not items[media].is_valid(no_value) and not _accepted(glance_wire.parse_patch, [no_value], draft)
        typed = {"op": "replace", "path": "/min_disk", "value": "x"} if draft == 10 else {"replace": "/min_disk",
                                                                                         "value": "x"}
        assert not items[media].is_valid(typed)
