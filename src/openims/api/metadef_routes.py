"""The metadata definitions catalogue of the native image API (Glance v2 metadefs).

Namespaces, the objects, properties and tags they hold, resource types and associations, under
``/v2/metadefs``. Handlers translate: bodies go to ``catalog.metadefs`` as they came (its
``definitions`` checks them), results come back through ``api.metadef_wire``. Reads need the
reader role; every change is checked by the catalogue (image administrators of the owner project).
A method a path does not take is 405 with ``Allow`` (``api.errors``); the schemas are served by
``glance_routes.show_schema``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from openims.api import metadef_wire as wire
from openims.api import openapi_docs
from openims.api.auth import Caller, ReaderDep, RuntimeDep
from openims.api.deps import SessionDep, api_router
from openims.api.glance_routes import json_body
from openims.api.openapi_docs import BOOLEAN, STRING, Schema, array, json_response, obj
from openims.catalog.metadefs import contents, definitions, namespaces, resource_types
from openims.catalog.metadefs.access import Actor
from openims.catalog.metadefs.definitions import DESCRIPTION_MAX, NAME_MAX, OWNER_MAX, PROPERTY_TYPES, VISIBILITIES
from openims.catalog.metadefs.namespaces import SORT_DIRS, SORT_KEYS
from openims.iam.roles import Permission

router = api_router(tags=["glance metadefs"])

_NS = "/v2/metadefs/namespaces/{namespace}"
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid request (IMS error code in the body)"},
    401: {"description": "Missing or invalid token"},
    403: {"description": "Not an image administrator of the owner project, a read-only attribute, or a "
                         "protected namespace"},
    404: {"description": "No such namespace visible to the project, or nothing of that name in it"},
}
_WRITE_ERRORS = {**_ERRORS, 409: {"description": "The name is taken"}}
# definitions.name: 1 to NAME_MAX characters, not blank, neither '/' nor a control character.
_NAME: Schema = {"type": "string", "minLength": 1, "maxLength": NAME_MAX,
                 "pattern": rf"^(?!\s*$)[^/{definitions._CONTROL.pattern.strip('[]')}]*$"}
_TYPE: Schema = {"type": "string", "enum": list(PROPERTY_TYPES)}
_LIST: Schema = {"type": "array"}


def _text(limit: int) -> Schema:
    return {"anyOf": [{"type": "string", "maxLength": limit}, {"type": "null"}]}


def _closed(schema: Schema) -> Schema:
    """A document definitions._document checks: no other attribute (a read-only one is 403, others 400)."""
    return {**schema, "additionalProperties": False}


# A property definition as definitions.definition checks it, keyword by keyword (PROPERTY_KEYS).
_DEFINITION_KEYS: dict[str, Schema] = {
    **{key: STRING for key in definitions._STRING_KEYS},
    **{key: {"type": "number"} for key in definitions._NUMBER_KEYS},
    **{key: {"type": "integer", "minimum": 0} for key in definitions._COUNT_KEYS},
    **{key: BOOLEAN for key in definitions._FLAG_KEYS},
    **{key: array(STRING) for key in definitions._LIST_KEYS},
    "type": _TYPE, "enum": _LIST, "default": {},
    "items": _closed(obj(type=_TYPE, enum=_LIST)),
}
DEFINITION: Schema = _closed(obj("type", "title", **_DEFINITION_KEYS))
_PROPERTY_MAP: Schema = {"anyOf": [{"type": "object", "propertyNames": _NAME, "additionalProperties": DEFINITION},
                                   {"type": "null"}]}
_OBJECT_FIELDS: dict[str, Schema] = {
    "name": _NAME, "description": _text(DESCRIPTION_MAX),
    "required": {"anyOf": [{**array(STRING), "uniqueItems": True}, {"type": "null"}]}, "properties": _PROPERTY_MAP}
_ASSOCIATION_FIELDS: dict[str, Schema] = {"name": _NAME, "prefix": _text(NAME_MAX),
                                          "properties_target": _text(NAME_MAX)}


def _namespace_doc(*, contents: bool) -> Schema:
    """definitions.namespace_spec: its attributes; its contents at creation (a PUT ignores them, unchecked).
    Inside a namespace, what a GET shows of an object, tag or association (times, links) is dropped."""
    fields: dict[str, Schema] = {
        "namespace": _NAME, "display_name": _text(NAME_MAX), "description": _text(DESCRIPTION_MAX),
        "visibility": {"anyOf": [{"type": "string", "enum": list(VISIBILITIES)}, {"type": "null"}]},
        "protected": {"anyOf": [BOOLEAN, {"type": "null"}]}, "owner": _text(OWNER_MAX),
        "properties": _PROPERTY_MAP, "objects": {}, "tags": {}, "resource_type_associations": {}}
    if contents:
        fields.update({
            "objects": {"anyOf": [array(obj("name", **_OBJECT_FIELDS)), {"type": "null"}]},
            "tags": {"anyOf": [array(obj("name", name=_NAME)), {"type": "null"}]},
            "resource_type_associations": {"anyOf": [array(obj("name", **_ASSOCIATION_FIELDS)), {"type": "null"}]}})
    else:
        fields["properties"] = {}
    return _closed(obj("namespace", **fields))
_NAMED = obj("name", name=STRING)


def _created(what: str, schema: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    return {201: json_response(f"The created {what}", schema), **_WRITE_ERRORS}
JsonBody = Annotated[Any, Depends(json_body)]


def _body(description: str, /, *required: str, **properties: dict[str, Any]) -> dict[str, Any]:
    return _document(description, _closed(obj(*required, **properties)))


def _document(description: str, schema: Schema) -> dict[str, Any]:
    return openapi_docs.json_body({**schema, "description": description})


def _property_body(description: str) -> dict[str, Any]:
    return _document(description, _closed(obj("name", "title", "type", name=_NAME, **_DEFINITION_KEYS)))


def _actor(caller: Caller) -> Actor:
    return Actor(project_id=caller.project_id, admin=caller.can(Permission.IMAGE_ADMIN),
                 operator=caller.can(Permission.OPERATOR))


def _no_content() -> Response:
    return Response(status_code=204)


def _namespace(session: Session, row: Any) -> dict[str, Any]:
    return wire.namespace_view(row, resource_types.associations_of(session, [row.id])[row.id])


# ---------------------------------------------------------------- namespaces


@router.get("/v2/metadefs/namespaces", summary="List metadata definition namespaces",
            responses={**{k: _ERRORS[k] for k in (400, 401)},
                       404: {"description": "The marker is no namespace the caller can see"}},
            openapi_extra={"parameters": openapi_docs.query(
                ("limit", {"type": "integer", "minimum": 0}, "Page size"),
                ("marker", STRING, "The last namespace of the previous page"),
                ("visibility", {"type": "string", "enum": list(VISIBILITIES)}, "public or private"),
                ("resource_types", STRING, "Resource type names, comma-separated"),
                ("sort_key", {"type": "string", "enum": list(SORT_KEYS)}, "Sort key"),
                ("sort_dir", {"type": "string", "enum": list(SORT_DIRS)}, "asc or desc"))})
def list_namespaces(request: Request, caller: ReaderDep, session: SessionDep) -> dict[str, Any]:
    params = request.query_params.multi_items()
    q = wire.namespace_query(params)
    rows = namespaces.list_namespaces(session, _actor(caller), q)
    return wire.namespace_list(params, q, rows, resource_types.associations_of(session, [r.id for r in rows]))


@router.post("/v2/metadefs/namespaces", status_code=201, summary="Create a namespace (with any contents)",
             responses=_created("namespace", obj("namespace", namespace=STRING)),
             openapi_extra=_document("namespace, display_name, description, visibility, protected, owner, "
                                     "resource_type_associations, properties, objects, tags "
                                     "(GET /v2/schemas/metadefs/namespace)", _namespace_doc(contents=True)))
def create_namespace(request: Request, caller: ReaderDep, body: JsonBody, session: SessionDep,
                     rt: RuntimeDep) -> JSONResponse:
    row = namespaces.create(session, _actor(caller), definitions.namespace_spec(body), rt.clock())
    location = str(request.base_url).rstrip("/") + wire.location(row.namespace)
    return JSONResponse(wire.namespace_detail_view(namespaces.detail(session, row)), status_code=201,
                        headers={"Location": location})


@router.get(_NS, summary="Show a namespace with its contents", responses=_ERRORS)
def show_namespace(namespace: str, caller: ReaderDep, session: SessionDep,
                   resource_type: str | None = None) -> dict[str, Any]:
    return wire.namespace_detail_view(namespaces.show(session, _actor(caller), namespace, resource_type))


@router.put(_NS, summary="Replace a namespace's attributes (its contents stay)", responses=_WRITE_ERRORS,
            openapi_extra=_document("the namespace's attributes, as in POST (its contents are ignored)",
                                    _namespace_doc(contents=False)))
def update_namespace(namespace: str, caller: ReaderDep, body: JsonBody, session: SessionDep,
                     rt: RuntimeDep) -> dict[str, Any]:
    row = namespaces.update(session, _actor(caller), namespace, definitions.namespace_spec(body, contents=False),
                            rt.clock())
    return _namespace(session, row)


@router.delete(_NS, status_code=204, summary="Delete a namespace and everything in it", responses=_ERRORS)
def delete_namespace(namespace: str, caller: ReaderDep, session: SessionDep) -> Response:
    namespaces.delete_namespace(session, _actor(caller), namespace)
    return _no_content()


# ---------------------------------------------------------------- objects


@router.get(_NS + "/objects", summary="List a namespace's objects", responses=_ERRORS)
def list_objects(namespace: str, caller: ReaderDep, session: SessionDep) -> dict[str, Any]:
    row, found = contents.list_objects(session, _actor(caller), namespace)
    return {"objects": [wire.object_view(row, o) for o in found], "schema": f"{wire.SCHEMAS}/objects"}


@router.post(_NS + "/objects", status_code=201, summary="Create an object", responses=_created("object", _NAMED),
             openapi_extra=_body("name, description, required, properties (GET /v2/schemas/metadefs/object)",
                                 "name", **_OBJECT_FIELDS))
def create_object(namespace: str, caller: ReaderDep, body: JsonBody, session: SessionDep,
                  rt: RuntimeDep) -> JSONResponse:
    row, obj = contents.create_object(session, _actor(caller), namespace, definitions.object_spec(body), rt.clock())
    return JSONResponse(wire.object_view(row, obj), status_code=201)


@router.delete(_NS + "/objects", status_code=204, summary="Delete all objects of a namespace", responses=_ERRORS)
def delete_objects(namespace: str, caller: ReaderDep, session: SessionDep) -> Response:
    contents.delete_objects(session, _actor(caller), namespace)
    return _no_content()


@router.get(_NS + "/objects/{object_name}", summary="Show an object", responses=_ERRORS)
def show_object(namespace: str, object_name: str, caller: ReaderDep, session: SessionDep) -> dict[str, Any]:
    row, obj = contents.get_object(session, _actor(caller), namespace, object_name)
    return wire.object_view(row, obj)


@router.put(_NS + "/objects/{object_name}", summary="Replace (or rename) an object", responses=_WRITE_ERRORS,
            openapi_extra=_body("the whole object, as in POST", "name", **_OBJECT_FIELDS))
def update_object(namespace: str, object_name: str, caller: ReaderDep, body: JsonBody, session: SessionDep,
                  rt: RuntimeDep) -> dict[str, Any]:
    row, obj = contents.update_object(session, _actor(caller), namespace, object_name, definitions.object_spec(body),
                                      rt.clock())
    return wire.object_view(row, obj)


@router.delete(_NS + "/objects/{object_name}", status_code=204, summary="Delete an object", responses=_ERRORS)
def delete_object(namespace: str, object_name: str, caller: ReaderDep, session: SessionDep) -> Response:
    contents.delete_object(session, _actor(caller), namespace, object_name)
    return _no_content()


# ---------------------------------------------------------------- properties


@router.get(_NS + "/properties", summary="List a namespace's property definitions", responses=_ERRORS)
def list_properties(namespace: str, caller: ReaderDep, session: SessionDep) -> dict[str, Any]:
    return wire.properties_view(contents.list_properties(session, _actor(caller), namespace))


@router.post(_NS + "/properties", status_code=201, summary="Create a property definition",
             responses=_created("property definition", _NAMED),
             openapi_extra=_property_body("name, title, type and the JSON-schema keywords of "
                                          "GET /v2/schemas/metadefs/property"))
def create_property(namespace: str, caller: ReaderDep, body: JsonBody, session: SessionDep,
                    rt: RuntimeDep) -> JSONResponse:
    prop = contents.create_property(session, _actor(caller), namespace, definitions.property_spec(body), rt.clock())
    return JSONResponse(wire.property_view(prop), status_code=201)


@router.delete(_NS + "/properties", status_code=204, summary="Delete all property definitions of a namespace",
               responses=_ERRORS)
def delete_properties(namespace: str, caller: ReaderDep, session: SessionDep) -> Response:
    contents.delete_properties(session, _actor(caller), namespace)
    return _no_content()


@router.get(_NS + "/properties/{property_name}", summary="Show a property definition", responses=_ERRORS)
def show_property(namespace: str, property_name: str, caller: ReaderDep, session: SessionDep,
                  resource_type: str | None = None) -> dict[str, Any]:
    prop = contents.get_property(session, _actor(caller), namespace, property_name, resource_type)
    return wire.property_view(prop)


@router.put(_NS + "/properties/{property_name}", summary="Replace (or rename) a property definition",
            responses=_WRITE_ERRORS,
            openapi_extra=_property_body("the whole definition with its name, as in POST"))
def update_property(namespace: str, property_name: str, caller: ReaderDep, body: JsonBody, session: SessionDep,
                    rt: RuntimeDep) -> dict[str, Any]:
    prop = contents.update_property(session, _actor(caller), namespace, property_name,
                                    definitions.property_spec(body), rt.clock())
    return wire.property_view(prop)


@router.delete(_NS + "/properties/{property_name}", status_code=204, summary="Delete a property definition",
               responses=_ERRORS)
def delete_property(namespace: str, property_name: str, caller: ReaderDep, session: SessionDep) -> Response:
    contents.delete_property(session, _actor(caller), namespace, property_name)
    return _no_content()


# ---------------------------------------------------------------- tags


@router.get(_NS + "/tags", summary="List a namespace's tags", responses=_ERRORS)
def list_tags(namespace: str, caller: ReaderDep, session: SessionDep) -> dict[str, Any]:
    return {"tags": [wire.tag_view(t) for t in contents.list_tags(session, _actor(caller), namespace)]}


@router.post(_NS + "/tags", status_code=201, summary="Create tags: they replace the namespace's tags unless "
                                                    "X-Openstack-Append: True",
             responses=_created("tags", obj("tags", tags=array(_NAMED))),
             openapi_extra=_body('{"tags": [{"name": …}, …]}', "tags",
                                 tags=array(_closed(obj("name", name=_NAME)))))
def create_tags(namespace: str, request: Request, caller: ReaderDep, body: JsonBody, session: SessionDep,
                rt: RuntimeDep) -> JSONResponse:
    created = contents.create_tags(session, _actor(caller), namespace, definitions.tag_names(body), rt.clock(),
                                   append=wire.appends(request.headers.get("x-openstack-append")))
    return JSONResponse({"tags": [{"name": t.name} for t in created]}, status_code=201)


@router.delete(_NS + "/tags", status_code=204, summary="Delete all tags of a namespace", responses=_ERRORS)
def delete_tags(namespace: str, caller: ReaderDep, session: SessionDep) -> Response:
    contents.delete_tags(session, _actor(caller), namespace)
    return _no_content()


@router.get(_NS + "/tags/{tag_name}", summary="Show a tag", responses=_ERRORS)
def show_tag(namespace: str, tag_name: str, caller: ReaderDep, session: SessionDep) -> dict[str, Any]:
    return wire.tag_view(contents.get_tag(session, _actor(caller), namespace, tag_name))


@router.post(_NS + "/tags/{tag_name}", status_code=201, summary="Create a tag", responses=_created("tag", _NAMED))
def create_tag(namespace: str, tag_name: str, caller: ReaderDep, session: SessionDep, rt: RuntimeDep) -> JSONResponse:
    tag = contents.create_tag(session, _actor(caller), namespace, tag_name, rt.clock())
    return JSONResponse(wire.tag_view(tag), status_code=201)


@router.put(_NS + "/tags/{tag_name}", summary="Rename a tag", responses=_WRITE_ERRORS,
            openapi_extra=_body('{"name": …}', "name", name=_NAME))
def update_tag(namespace: str, tag_name: str, caller: ReaderDep, body: JsonBody, session: SessionDep,
               rt: RuntimeDep) -> dict[str, Any]:
    tag = contents.update_tag(session, _actor(caller), namespace, tag_name, definitions.tag_name(body), rt.clock())
    return wire.tag_view(tag)


@router.delete(_NS + "/tags/{tag_name}", status_code=204, summary="Delete a tag", responses=_ERRORS)
def delete_tag(namespace: str, tag_name: str, caller: ReaderDep, session: SessionDep) -> Response:
    contents.delete_tag(session, _actor(caller), namespace, tag_name)
    return _no_content()


# ---------------------------------------------------------------- resource types and associations


@router.get("/v2/metadefs/resource_types", summary="List resource types", responses={401: _ERRORS[401]})
def list_resource_types(caller: ReaderDep, session: SessionDep) -> dict[str, Any]:
    return {"resource_types": [wire.resource_type_view(r) for r in resource_types.list_resource_types(session)]}


@router.get(_NS + "/resource_types", summary="List a namespace's resource type associations", responses=_ERRORS)
def list_associations(namespace: str, caller: ReaderDep, session: SessionDep) -> dict[str, Any]:
    found = resource_types.list_associations(session, _actor(caller), namespace)
    return {"resource_type_associations": [wire.association_view(a) for a in found]}


@router.post(_NS + "/resource_types", status_code=201, summary="Associate a resource type with a namespace",
             responses=_created("association", _NAMED),
             openapi_extra=_body("name, prefix, properties_target", "name", **_ASSOCIATION_FIELDS))
def create_association(namespace: str, caller: ReaderDep, body: JsonBody, session: SessionDep,
                       rt: RuntimeDep) -> JSONResponse:
    assoc = resource_types.create_association(session, _actor(caller), namespace,
                                              definitions.association_spec(body), rt.clock())
    return JSONResponse(wire.association_view(assoc), status_code=201)


@router.delete(_NS + "/resource_types/{resource_type}", status_code=204,
               summary="Remove a resource type association", responses=_ERRORS)
def delete_association(namespace: str, resource_type: str, caller: ReaderDep, session: SessionDep) -> Response:
    resource_types.delete_association(session, _actor(caller), namespace, resource_type)
    return _no_content()
