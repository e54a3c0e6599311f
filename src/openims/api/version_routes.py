"""Version discovery for the three audiences that share the root (see docs/architecture.md)."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from openims.api.auth import RuntimeDep
from openims.api.deps import api_router
from openims.api.openapi_docs import LINKS, STRING, Responses, array, json_response, obj

_VERSION = obj("id", "status", "links", id=STRING, status=STRING, links=LINKS)
_VERSIONS: Responses = {300: json_response("The versions (300 Multiple Choices, as the services answer)",
                                obj("versions", versions=array(_VERSION)))}
_KEYSTONE_VERSIONS: Responses = {300: json_response("Keystone's versions document (300 Multiple Choices)", obj(
    "versions", versions=obj("values", values=array(_VERSION))))}

router = api_router(tags=["versions"])

_UPDATED = "2024-01-01T00:00:00Z"
# Glance API minor versions we answer; keystoneauth picks the highest CURRENT one. v2.12 (image
# tasks) is the newest whose features all exist here (v2.13+ bring the cache API). The multi-store
# versions (v2.8 stores, v2.10 delete from a store, v2.11 copy-image's all_stores_must_succeed) are
# listed only with several stores, as Glance lists them only with enabled_backends.
_GLANCE_VERSIONS = ("v2.12", "v2.9", "v2.7", "v2.6", "v2.5", "v2.4", "v2.3", "v2.2", "v2.1", "v2.0")
_MULTI_STORE_VERSIONS = ("v2.12", "v2.11", "v2.10", "v2.9", "v2.8", "v2.7", "v2.6", "v2.5", "v2.4", "v2.3", "v2.2",
                         "v2.1", "v2.0")


def _ims_version(base: str, vid: str, status: str) -> dict[str, Any]:
    return {"id": vid, "status": status, "version": "", "min_version": "", "updated": _UPDATED,
            "links": [{"rel": "self", "href": f"{base}/{vid}/"}]}


def _glance_versions(base: str, several_stores: bool) -> list[dict[str, Any]]:
    return [
        {"id": vid, "status": "CURRENT" if i == 0 else "SUPPORTED",
         "links": [{"rel": "self", "href": f"{base}/v2/"}]}
        for i, vid in enumerate(_MULTI_STORE_VERSIONS if several_stores else _GLANCE_VERSIONS)
    ]


@router.get("/", status_code=300, summary="IMS ListVersions (also lists the native image API versions)",
            responses=_VERSIONS)
def list_versions(rt: RuntimeDep) -> JSONResponse:
    base = rt.settings.base_url
    versions = [_ims_version(base, "v1", "SUPPORTED"), _ims_version(base, "v2", "CURRENT")]
    return JSONResponse({"versions": versions + _glance_versions(base, rt.stores is not None)}, status_code=300)


@router.get("/v1", summary="IMS ShowVersion v1")
@router.get("/v1/", include_in_schema=False)
def show_v1(rt: RuntimeDep) -> dict[str, Any]:
    return {"version": _ims_version(rt.settings.base_url, "v1", "SUPPORTED")}


@router.get("/v2", summary="IMS ShowVersion v2")
@router.get("/v2/", include_in_schema=False)
def show_v2(rt: RuntimeDep) -> dict[str, Any]:
    return {"version": _ims_version(rt.settings.base_url, "v2", "CURRENT")}


@router.get("/image", status_code=300, summary="Glance versions document at the catalog's image endpoint",
            responses=_VERSIONS)
@router.get("/image/", include_in_schema=False)
def image_versions(rt: RuntimeDep) -> JSONResponse:
    return JSONResponse({"versions": _glance_versions(f"{rt.settings.base_url}/image", rt.stores is not None)},
                        status_code=300)


@router.get("/versions", summary="Glance versions document, asked for explicitly (200, as Glance answers)")
def image_versions_explicit(rt: RuntimeDep) -> dict[str, Any]:
    # python-glanceclient reads <image endpoint>/versions (here /image/versions) and refuses a 300 there.
    return {"versions": _glance_versions(f"{rt.settings.base_url}/image", rt.stores is not None)}


def _keystone_v3(url: str) -> dict[str, Any]:
    return {
        "id": "v3.14",
        "status": "stable",
        "updated": _UPDATED,
        "links": [{"rel": "self", "href": f"{url}/v3/"}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}],
    }


@router.get("/identity", status_code=300, summary="Keystone versions document at the identity root",
            responses=_KEYSTONE_VERSIONS)
@router.get("/identity/", include_in_schema=False)
def identity_versions(rt: RuntimeDep) -> JSONResponse:
    doc = {"versions": {"values": [_keystone_v3(f"{rt.settings.base_url}/identity")]}}
    return JSONResponse(doc, status_code=300)


@router.get("/v3", summary="Keystone v3 version document")
@router.get("/v3/", include_in_schema=False)
def identity_v3(rt: RuntimeDep) -> dict[str, Any]:
    return {"version": _keystone_v3(rt.settings.base_url)}
