"""ORM models. Wire shapes live in ``api``; rules live in ``iam`` and ``catalog``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.expression import false

from openims.db.types import UTCDateTime


class Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


# ---------------------------------------------------------------- identity


class Domain(Base):
    __tablename__ = "domains"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime]
    description: Mapped[str] = mapped_column(String(255), default="", server_default="")


class Project(Base):
    __tablename__ = "projects"
    # Names are unique per account: every account has its own project named after the region.
    __table_args__ = (UniqueConstraint("domain_id", "name", name="uq_projects_domain_name"),)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    domain_id: Mapped[str] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), index=True)
    description: Mapped[str] = mapped_column(String(255), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Huawei IAM's extra status, "normal" or "suspended".
    status: Mapped[str] = mapped_column(String(16), default="normal")
    created_at: Mapped[dt.datetime]


class User(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("domain_id", "name"),)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    domain_id: Mapped[str] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), index=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    email: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[dt.datetime]
    password_changed_at: Mapped[dt.datetime | None]
    last_login_at: Mapped[dt.datetime | None]
    # Login throttling: consecutive failures and the time before which logins are refused.
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None]


class Group(Base):
    __tablename__ = "groups"
    __table_args__ = (UniqueConstraint("domain_id", "name"),)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    domain_id: Mapped[str] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), index=True)
    description: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[dt.datetime]


class GroupMember(Base):
    __tablename__ = "group_members"
    group_id: Mapped[str] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Role(Base):
    __tablename__ = "roles"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(String(255), default="")
    # Huawei IAM role "type": AX (domain level), XA (project level), AA (both).
    type: Mapped[str] = mapped_column(String(4), default="AA")
    catalog: Mapped[str] = mapped_column(String(64), default="BASE")


class Grant(Base):
    """A role granted to a group on one project, on the domain, or on all projects of the domain."""

    __tablename__ = "grants"
    group_id: Mapped[str] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True)
    role_id: Mapped[str] = mapped_column(ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True)
    # "project", "domain" or "all_projects" (inherited to every project of the domain).
    target_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    target_id: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class UserGrant(Base):
    """A role granted to one user directly (Keystone's user grants), on a project or the domain."""

    __tablename__ = "user_grants"
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    role_id: Mapped[str] = mapped_column(ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True)
    # As ``grants.target_type``.
    target_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    target_id: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class Revocation(Base):
    """A revoked token (by audit id) or all tokens of a user issued before a moment."""

    __tablename__ = "revocations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    audit_id: Mapped[str | None] = mapped_column(String(64), index=True)
    user_id: Mapped[str | None] = mapped_column(String(64), index=True)
    issued_before: Mapped[dt.datetime | None]
    # After this moment every token it could match has expired, so the row can go.
    expires_at: Mapped[dt.datetime]


class KeyMaterial(Base):
    """A Fernet key of the database key store (``OPENIMS_KEY_STORE=database``), sealed under the master
    key. ``purpose`` names the set (token or credential keys); ``idx`` follows Keystone's numbering."""

    __tablename__ = "key_material"
    purpose: Mapped[str] = mapped_column(String(16), primary_key=True)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    sealed: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime]


# ---------------------------------------------------------------- objects


class Bucket(Base):
    __tablename__ = "buckets"
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    domain_id: Mapped[str] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime]


# ---------------------------------------------------------------- images


class Image(Base):
    __tablename__ = "images"
    __table_args__ = (
        # Keyset pagination of a project's images by the default sort (created_at desc, id desc).
        Index("ix_images_owner_created", "owner", "created_at", "id"),
        Index("ix_images_owner_name", "owner", "name"),
        # The public branch of image lists (see catalog.images.list_images).
        Index("ix_images_visibility_created", "visibility", "created_at", "id"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255), default="")
    description: Mapped[str] = mapped_column(String(1024), default="")
    status: Mapped[str] = mapped_column(String(16), default="queued")
    visibility: Mapped[str] = mapped_column(String(16), default="private")
    image_type: Mapped[str] = mapped_column(String(16), default="private")
    protected: Mapped[bool] = mapped_column(Boolean, default=False)
    # Glance's os_hidden: left out of native lists unless asked for (os_hidden=true).
    os_hidden: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    disk_format: Mapped[str | None] = mapped_column(String(16))
    container_format: Mapped[str | None] = mapped_column(String(16))
    size: Mapped[int | None] = mapped_column(BigInteger)
    virtual_size: Mapped[int | None] = mapped_column(BigInteger)
    min_disk: Mapped[int] = mapped_column(Integer, default=0)
    min_ram: Mapped[int] = mapped_column(Integer, default=0)
    checksum: Mapped[str | None] = mapped_column(String(32))
    os_hash_algo: Mapped[str | None] = mapped_column(String(16))
    os_hash_value: Mapped[str | None] = mapped_column(String(128))
    # Where the stored bytes live in the image store (a key, not a path).
    location: Mapped[str | None] = mapped_column(String(255))
    # IMS extension attributes ("__os_version", "__platform", …) and custom properties.
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]
    # A direct upload (PUT …/file) in progress: who holds the image in ``saving`` and until when.
    # Renewed while data arrives; a lapsed lease means the uploading process died, and the worker's
    # sweep returns the image to ``queued`` (catalog.uploads). NULL otherwise: jobs have their own leases.
    upload_holder: Mapped[str | None] = mapped_column(String(64))
    upload_lease_expires_at: Mapped[dt.datetime | None] = mapped_column(index=True)


class ImageTag(Base):
    __tablename__ = "image_tags"
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(255), primary_key=True)


class ImageMember(Base):
    """A project an image is shared with, and whether it accepted."""

    __tablename__ = "image_members"
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    # pending → accepted | rejected (and back, as the member decides)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]


class ImageCopy(Base):
    """A copy of an image's data in a further store (``OPENIMS_STORES``): made by copy-image, or by an
    import into several stores. ``images.location`` is the first copy; each location names its store."""

    __tablename__ = "image_copies"
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    store_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    location: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime]


class ProjectQuota(Base):
    """Per-project overrides of the default quotas (Settings.image_quota)."""

    __tablename__ = "project_quotas"
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    images: Mapped[int] = mapped_column(Integer)


# ---------------------------------------------------------------- access keys


class AccessKey(Base):
    """A permanent or temporary AK/SK pair. The secret is stored encrypted, never in clear."""

    __tablename__ = "access_keys"
    access: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    secret_encrypted: Mapped[str] = mapped_column(Text)
    # "active" or "inactive"
    status: Mapped[str] = mapped_column(String(16), default="active")
    description: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[dt.datetime]
    last_used_at: Mapped[dt.datetime | None]
    # Temporary keys only: expiry and the digest of the security token that must accompany them.
    expires_at: Mapped[dt.datetime | None]
    security_token_hash: Mapped[str | None] = mapped_column(String(128))


# ---------------------------------------------------------------- jobs


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_claim", "status", "lease_expires_at"),)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    job_type: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="INIT")
    # Typed payload of the job's kind, serialised (see catalog.jobs).
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    entities: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error_code: Mapped[str | None] = mapped_column(String(32))
    fail_reason: Mapped[str | None] = mapped_column(Text)
    parent_id: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[dt.datetime]
    begin_time: Mapped[dt.datetime | None]
    end_time: Mapped[dt.datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[dt.datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)


# ---------------------------------------------------------------- metadata definitions (Glance metadefs)


class MetadefNamespace(Base):
    """A catalogue of metadata definitions (Glance's metadef namespace), addressed by its name."""

    __tablename__ = "metadef_namespaces"
    __table_args__ = (Index("ix_metadef_namespaces_owner", "owner"),
                      Index("ix_metadef_namespaces_visibility", "visibility"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    namespace: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(80))
    description: Mapped[str | None] = mapped_column(Text)
    # "public" or "private" (only the owner project sees a private one).
    visibility: Mapped[str] = mapped_column(String(32), default="private")
    # While true, neither the namespace nor anything in it can be deleted.
    protected: Mapped[bool] = mapped_column(Boolean, default=False)
    owner: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]


class MetadefObject(Base):
    __tablename__ = "metadef_objects"
    __table_args__ = (UniqueConstraint("namespace_id", "name", name="uq_metadef_objects_namespace_name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    namespace_id: Mapped[int] = mapped_column(ForeignKey("metadef_namespaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(80))
    description: Mapped[str | None] = mapped_column(Text)
    # Names of the object's properties that must be given.
    required: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # Property name -> its definition (as MetadefProperty.definition).
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]


class MetadefProperty(Base):
    __tablename__ = "metadef_properties"
    __table_args__ = (UniqueConstraint("namespace_id", "name", name="uq_metadef_properties_namespace_name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    namespace_id: Mapped[int] = mapped_column(ForeignKey("metadef_namespaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(80))
    # The JSON-schema-like definition (type, title, enum, default, …), validated by catalog.metadefs.
    definition: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]


class MetadefTag(Base):
    __tablename__ = "metadef_tags"
    __table_args__ = (UniqueConstraint("namespace_id", "name", name="uq_metadef_tags_namespace_name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    namespace_id: Mapped[int] = mapped_column(ForeignKey("metadef_namespaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]


class MetadefResourceType(Base):
    """A kind of resource definitions apply to (OS::Glance::Image, OS::Nova::Flavor, …); global."""

    __tablename__ = "metadef_resource_types"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    # The seeded ones; a type created by an association is not.
    protected: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]


class MetadefAssociation(Base):
    """A namespace applies to a resource type, its property names carrying ``prefix`` there."""

    __tablename__ = "metadef_namespace_resource_types"
    namespace_id: Mapped[int] = mapped_column(ForeignKey("metadef_namespaces.id", ondelete="CASCADE"),
                                              primary_key=True)
    resource_type_id: Mapped[int] = mapped_column(ForeignKey("metadef_resource_types.id", ondelete="CASCADE"),
                                                  primary_key=True, index=True)
    prefix: Mapped[str | None] = mapped_column(String(80))
    properties_target: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]


class MetadefSeed(Base):
    """A shipped namespace loaded once: one deleted by an administrator does not come back at the next start."""

    __tablename__ = "metadef_seeds"
    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    loaded_at: Mapped[dt.datetime]


# ---------------------------------------------------------------- rate limits


class RateCounter(Base):
    """One fixed window of one rate limit (``iam.ratelimit``): shared by every process on the database.

    ``key`` is a digest of what is counted (a user, an address, an access key), never the value itself.
    Rows whose window ended are pruned.
    """

    __tablename__ = "rate_counters"
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Epoch seconds: when the window began and ends.
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    window_end: Mapped[int] = mapped_column(BigInteger, index=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


# ---------------------------------------------------------------- audit trail (CTS traces)


class AuditTrace(Base):
    """One trace of the audit trail (``openims.audit``): a mutating call, a failed authentication or a
    job's start or end, in the fields of Cloud Trace Service's traces. Ids and names only: never a body,
    a password, a secret or a token. Rows older than ``OPENIMS_AUDIT_RETENTION_DAYS`` are pruned."""

    __tablename__ = "audit_traces"
    # An account's traces newest first (the list query), every account's for the operator, and the
    # pruning of old rows; a resource's history.
    __table_args__ = (Index("ix_audit_traces_domain_time", "domain_id", "time"),
                      Index("ix_audit_traces_time", "time"),
                      Index("ix_audit_traces_resource_id", "resource_id"))
    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # CTS trace_id
    time: Mapped[int] = mapped_column(BigInteger)  # when it happened, epoch ms
    record_time: Mapped[int] = mapped_column(BigInteger)  # when it was recorded, epoch ms
    domain_id: Mapped[str | None] = mapped_column(String(64))  # the account whose trace it is
    project_id: Mapped[str | None] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(String(64))
    user_name: Mapped[str | None] = mapped_column(String(255))
    user_domain_name: Mapped[str | None] = mapped_column(String(255))
    access_key_id: Mapped[str | None] = mapped_column(String(64))
    service_type: Mapped[str] = mapped_column(String(16))
    resource_type: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str | None] = mapped_column(String(255))
    resource_name: Mapped[str | None] = mapped_column(String(255))
    trace_name: Mapped[str] = mapped_column(String(64))
    trace_rating: Mapped[str] = mapped_column(String(16))
    trace_type: Mapped[str] = mapped_column(String(16))
    code: Mapped[str | None] = mapped_column(String(16))
    request_id: Mapped[str | None] = mapped_column(String(64))
    source_ip: Mapped[str | None] = mapped_column(String(64))
    api_version: Mapped[str | None] = mapped_column(String(16))
