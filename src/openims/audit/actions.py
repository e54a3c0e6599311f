"""What each mutating route is, for the audit trail: (method, route template) → service, resource, action.

The one place that names them (docs/api.md "Audit trail" lists it). ``tests/unit/audit`` checks that
every mutating route of the app is here, so a new route cannot be forgotten: a route that changes
nothing (a query sent by POST) is here too, as None.

The resource's id comes from a path parameter, or for a creation from the response's JSON (one path of
keys, e.g. ``("user", "id")``): only that value is read out of the response, never anything else of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Service(StrEnum):
    IMS = "IMS"  # images, jobs, tags, sharing, quotas (and the Glance-native API over the same images)
    IAM = "IAM"  # accounts, projects, users, groups, grants, tokens, access keys
    OBS = "OBS"  # buckets and their objects


@dataclass(frozen=True)
class Action:
    service: Service
    resource_type: str
    trace_name: str
    # The path parameter naming the resource, or where the new resource's id is in the response body.
    id_param: str | None = None
    id_in_response: tuple[str, ...] | None = None
    name_param: str | None = None
    name_in_response: tuple[str, ...] | None = None


def _ims(resource: str, name: str, id_param: str | None = None, *, id_in: tuple[str, ...] | None = None,
         name_in: tuple[str, ...] | None = None, name_param: str | None = None) -> Action:
    return Action(Service.IMS, resource, name, id_param, id_in, name_param, name_in)


def _iam(resource: str, name: str, id_param: str | None = None, *, id_in: tuple[str, ...] | None = None,
         name_in: tuple[str, ...] | None = None) -> Action:
    return Action(Service.IAM, resource, name, id_param, id_in, None, name_in)


_JOB = ("job_id",)
_IMPORT = _ims("job", "createImage", id_in=_JOB)
_DATA_IMPORT = _ims("job", "createDataImage", id_in=_JOB)
_QUICK_IMPORT = _ims("job", "quickImportImage", id_in=_JOB)
_EXPORT = _ims("image", "exportImage", "image_id")
_COPY = _ims("image", "copyImage", "image_id")
_REGISTER = _ims("image", "registerImage", "image_id")

# The trace of a failed password login (POST /v3/auth/tokens answered 401): CTS records it as "login".
LOGIN_FAILED = "login"
# A request refused for its credentials on any other route (a bad token or signature).
AUTHENTICATION_FAILED = "authenticate"

ACTIONS: dict[tuple[str, str], Action | None] = {
    # ---- Glance-native images
    ("POST", "/v2/images"): _ims("image", "createImage", id_in=("id",), name_in=("name",)),
    ("PATCH", "/v2/images/{image_id}"): _ims("image", "updateImage", "image_id"),
    ("DELETE", "/v2/images/{image_id}"): _ims("image", "deleteImage", "image_id"),
    ("POST", "/v2/images/{image_id}/actions/deactivate"): _ims("image", "deactivateImage", "image_id"),
    ("POST", "/v2/images/{image_id}/actions/reactivate"): _ims("image", "reactivateImage", "image_id"),
    ("PUT", "/v2/images/{image_id}/file"): _ims("image", "uploadImageData", "image_id"),
    ("PUT", "/v2/images/{image_id}/stage"): _ims("image", "stageImageData", "image_id"),
    ("DELETE", "/v2/stores/{store_id}/{image_id}"): _ims("image", "deleteImageFromStore", "image_id"),
    ("POST", "/v2/images/{image_id}/import"): _ims("image", "importImage", "image_id"),
    # ---- IMS images and jobs
    ("POST", "/v2.1/cloudimages/action"): _IMPORT,
    ("POST", "/v2/cloudimages/action"): _IMPORT,
    ("POST", "/v2.1/cloudimages/dataimages/action"): _DATA_IMPORT,
    ("POST", "/v1/cloudimages/dataimages/action"): _DATA_IMPORT,
    ("POST", "/v1/cloudimages/wholeimages/action"): _ims("job", "createWholeImage", id_in=_JOB),
    ("PATCH", "/v2/cloudimages/{image_id}"): _ims("image", "updateImage", "image_id"),
    ("POST", "/v2.1/cloudimages/quickimport/action"): _QUICK_IMPORT,
    ("POST", "/v2/cloudimages/quickimport/action"): _QUICK_IMPORT,
    ("POST", "/v1/cloudimages/{image_id}/upload"): _REGISTER,
    ("PUT", "/v1/cloudimages/{image_id}/upload"): _REGISTER,
    ("POST", "/v2.1/cloudimages/{image_id}/file"): _EXPORT,
    ("POST", "/v1/cloudimages/{image_id}/file"): _EXPORT,
    ("POST", "/v2.1/cloudimages/{image_id}/copy"): _COPY,
    ("POST", "/v1/cloudimages/{image_id}/copy"): _COPY,
    ("PUT", "/v1/cloudimages/quota"): _ims("quota", "updateQuota"),
    ("DELETE", "/v1.1/images/{image_id}"): _ims("image", "deleteImage", "image_id"),
    # ---- tags
    ("POST", "/v2/{project_id}/images/{image_id}/tags"): _ims("image_tag", "createImageTag", "image_id"),
    ("DELETE", "/v2/{project_id}/images/{image_id}/tags/{key}"): _ims("image_tag", "deleteImageTag", "image_id"),
    ("POST", "/v2/{project_id}/images/{image_id}/tags/action"): _ims("image_tag", "batchImageTags", "image_id"),
    ("DELETE", "/v1/{project_id}/cloudimages/{image_id}/tags/delete"):
        _ims("image_tag", "batchDeleteImageTags", "image_id"),
    ("POST", "/v2/{project_id}/images/resource_instances/action"): None,  # a query (images by tags)
    ("PUT", "/v1/cloudimages/tags"): _ims("image_tag", "setImageTag"),
    ("PUT", "/v2/images/{image_id}/tags/{tag}"): _ims("image_tag", "createImageTag", "image_id"),
    ("DELETE", "/v2/images/{image_id}/tags/{tag}"): _ims("image_tag", "deleteImageTag", "image_id"),
    # ---- sharing
    ("POST", "/v1/cloudimages/members"): _ims("image_member", "addImageMembers", id_in=_JOB),
    ("DELETE", "/v1/cloudimages/members"): _ims("image_member", "deleteImageMembers", id_in=_JOB),
    ("PUT", "/v1/cloudimages/members"): _ims("image_member", "updateImageMembers", id_in=_JOB),
    ("POST", "/v2/images/{image_id}/members"): _ims("image_member", "addImageMember", "image_id"),
    ("PUT", "/v2/images/{image_id}/members/{member_id}"): _ims("image_member", "updateImageMember", "image_id"),
    ("DELETE", "/v2/images/{image_id}/members/{member_id}"): _ims("image_member", "deleteImageMember", "image_id"),
    # ---- metadata definitions
    ("POST", "/v2/metadefs/namespaces"): _ims("metadef_namespace", "createNamespace", name_in=("namespace",)),
    ("PUT", "/v2/metadefs/namespaces/{namespace}"):
        _ims("metadef_namespace", "updateNamespace", "namespace", name_param="namespace"),
    ("DELETE", "/v2/metadefs/namespaces/{namespace}"):
        _ims("metadef_namespace", "deleteNamespace", "namespace", name_param="namespace"),
    ("POST", "/v2/metadefs/namespaces/{namespace}/objects"): _ims("metadef_object", "createObject", "namespace"),
    ("DELETE", "/v2/metadefs/namespaces/{namespace}/objects"): _ims("metadef_object", "deleteObjects", "namespace"),
    ("PUT", "/v2/metadefs/namespaces/{namespace}/objects/{object_name}"):
        _ims("metadef_object", "updateObject", "namespace", name_param="object_name"),
    ("DELETE", "/v2/metadefs/namespaces/{namespace}/objects/{object_name}"):
        _ims("metadef_object", "deleteObject", "namespace", name_param="object_name"),
    ("POST", "/v2/metadefs/namespaces/{namespace}/properties"):
        _ims("metadef_property", "createProperty", "namespace"),
    ("DELETE", "/v2/metadefs/namespaces/{namespace}/properties"):
        _ims("metadef_property", "deleteProperties", "namespace"),
    ("PUT", "/v2/metadefs/namespaces/{namespace}/properties/{property_name}"):
        _ims("metadef_property", "updateProperty", "namespace", name_param="property_name"),
    ("DELETE", "/v2/metadefs/namespaces/{namespace}/properties/{property_name}"):
        _ims("metadef_property", "deleteProperty", "namespace", name_param="property_name"),
    ("POST", "/v2/metadefs/namespaces/{namespace}/tags"): _ims("metadef_tag", "createTags", "namespace"),
    ("DELETE", "/v2/metadefs/namespaces/{namespace}/tags"): _ims("metadef_tag", "deleteTags", "namespace"),
    ("POST", "/v2/metadefs/namespaces/{namespace}/tags/{tag_name}"):
        _ims("metadef_tag", "createTag", "namespace", name_param="tag_name"),
    ("PUT", "/v2/metadefs/namespaces/{namespace}/tags/{tag_name}"):
        _ims("metadef_tag", "updateTag", "namespace", name_param="tag_name"),
    ("DELETE", "/v2/metadefs/namespaces/{namespace}/tags/{tag_name}"):
        _ims("metadef_tag", "deleteTag", "namespace", name_param="tag_name"),
    ("POST", "/v2/metadefs/namespaces/{namespace}/resource_types"):
        _ims("metadef_resource_type", "createAssociation", "namespace"),
    ("DELETE", "/v2/metadefs/namespaces/{namespace}/resource_types/{resource_type}"):
        _ims("metadef_resource_type", "deleteAssociation", "namespace", name_param="resource_type"),
    # ---- buckets
    ("PUT", "/obs/{bucket}"): Action(Service.OBS, "bucket", "createBucket", "bucket", name_param="bucket"),
    ("PUT", "/obs/{bucket}/{key}"): Action(Service.OBS, "object", "putObject", "bucket", name_param="key"),
    # ---- IAM: tokens, accounts, projects, users, groups, grants, access keys
    ("POST", "/v3/auth/tokens"): _iam("token", "createToken"),
    ("DELETE", "/v3/auth/tokens"): _iam("token", "revokeToken"),
    ("POST", "/v3/domains"): _iam("domain", "createDomain", id_in=("domain", "id"), name_in=("domain", "name")),
    ("PATCH", "/v3/domains/{domain_id}"): _iam("domain", "updateDomain", "domain_id"),
    ("DELETE", "/v3/domains/{domain_id}"): _iam("domain", "deleteDomain", "domain_id"),
    ("POST", "/v3/projects"): _iam("project", "createProject", id_in=("project", "id"), name_in=("project", "name")),
    ("PATCH", "/v3/projects/{project_id}"): _iam("project", "updateProject", "project_id"),
    ("DELETE", "/v3/projects/{project_id}"): _iam("project", "deleteProject", "project_id"),
    ("PUT", "/v3-ext/projects/{project_id}"): _iam("project", "updateProjectStatus", "project_id"),
    ("POST", "/v3/users"): _iam("user", "createUser", id_in=("user", "id"), name_in=("user", "name")),
    ("PATCH", "/v3/users/{user_id}"): _iam("user", "updateUser", "user_id"),
    ("DELETE", "/v3/users/{user_id}"): _iam("user", "deleteUser", "user_id"),
    ("POST", "/v3/users/{user_id}/password"): _iam("user", "changePassword", "user_id"),
    ("POST", "/v3/groups"): _iam("group", "createGroup", id_in=("group", "id"), name_in=("group", "name")),
    ("PATCH", "/v3/groups/{group_id}"): _iam("group", "updateGroup", "group_id"),
    ("DELETE", "/v3/groups/{group_id}"): _iam("group", "deleteGroup", "group_id"),
    ("PUT", "/v3/groups/{group_id}/users/{user_id}"): _iam("group", "addUserToGroup", "group_id"),
    ("DELETE", "/v3/groups/{group_id}/users/{user_id}"): _iam("group", "removeUserFromGroup", "group_id"),
    ("PUT", "/v3/projects/{project_id}/groups/{group_id}/roles/{role_id}"): _iam("role", "grantRole", "role_id"),
    ("DELETE", "/v3/projects/{project_id}/groups/{group_id}/roles/{role_id}"): _iam("role", "revokeRole", "role_id"),
    ("PUT", "/v3/domains/{domain_id}/groups/{group_id}/roles/{role_id}"): _iam("role", "grantRole", "role_id"),
    ("DELETE", "/v3/domains/{domain_id}/groups/{group_id}/roles/{role_id}"): _iam("role", "revokeRole", "role_id"),
    ("PUT", "/v3/OS-INHERIT/domains/{domain_id}/groups/{group_id}/roles/{role_id}/inherited_to_projects"):
        _iam("role", "grantRole", "role_id"),
    ("DELETE", "/v3/OS-INHERIT/domains/{domain_id}/groups/{group_id}/roles/{role_id}/inherited_to_projects"):
        _iam("role", "revokeRole", "role_id"),
    ("PUT", "/v3/projects/{project_id}/users/{user_id}/roles/{role_id}"): _iam("role", "grantRole", "role_id"),
    ("DELETE", "/v3/projects/{project_id}/users/{user_id}/roles/{role_id}"): _iam("role", "revokeRole", "role_id"),
    ("PUT", "/v3/domains/{domain_id}/users/{user_id}/roles/{role_id}"): _iam("role", "grantRole", "role_id"),
    ("DELETE", "/v3/domains/{domain_id}/users/{user_id}/roles/{role_id}"): _iam("role", "revokeRole", "role_id"),
    ("PUT", "/v3/OS-INHERIT/domains/{domain_id}/users/{user_id}/roles/{role_id}/inherited_to_projects"):
        _iam("role", "grantRole", "role_id"),
    ("DELETE", "/v3/OS-INHERIT/domains/{domain_id}/users/{user_id}/roles/{role_id}/inherited_to_projects"):
        _iam("role", "revokeRole", "role_id"),
    # The access key (AK) is its id, as CTS records it; the secret (SK) is never read out of the response.
    ("POST", "/v3.0/OS-CREDENTIAL/credentials"): _iam("access_key", "createAccessKey", id_in=("credential", "access")),
    ("PUT", "/v3.0/OS-CREDENTIAL/credentials/{access_key}"): _iam("access_key", "updateAccessKey", "access_key"),
    ("DELETE", "/v3.0/OS-CREDENTIAL/credentials/{access_key}"): _iam("access_key", "deleteAccessKey", "access_key"),
    ("POST", "/v3.0/OS-CREDENTIAL/securitytokens"):
        _iam("access_key", "createSecurityToken", id_in=("credential", "access")),
}

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def action_of(method: str, template: str) -> Action | None:
    return ACTIONS.get((method, template))


def service_of_path(path: str) -> Service:
    """The service a request belongs to by its path (for failed authentications on unlisted routes)."""
    if path.startswith("/obs/") or path == "/obs":
        return Service.OBS
    if path.startswith(("/v3/", "/v3.0/", "/v3-ext/")) and "/traces" not in path:
        return Service.IAM
    return Service.IMS
