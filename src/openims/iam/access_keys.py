"""IAM access keys (AK/SK): permanent keys, temporary keys with a security token, and who a
signed request speaks for.

The service must recompute signatures, so a secret cannot be stored as a one-way hash: it is
stored encrypted (Fernet) under the deployment's credential key repository, which is kept apart
from the token keys as Keystone keeps them. The clear secret leaves the service once, in the
response that creates it. A security token is only ever stored as its SHA-256.

Management follows ``iam.admin``: users manage their own keys, account administrators any key of
their account; another account's key or user is "not found", never "forbidden".
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.fernet import InvalidToken, MultiFernet
from sqlalchemy import delete, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from openims.db.models import AccessKey, Domain, Project, User
from openims.db.session import Database
from openims.errors import ApigError, IamBadRequest, IamForbidden, IamNotFound
from openims.iam import signing
from openims.iam.admin import Actor, protect_operator
from openims.iam.keys import KeyRing, current
from openims.iam.service import effective_roles

log = logging.getLogger("openims.iam")

ACTIVE = "active"
INACTIVE = "inactive"
STATUSES = (ACTIVE, INACTIVE)
# Huawei IAM: at most two permanent access keys per user.
MAX_PERMANENT_KEYS = 2
# Temporary keys live 15 minutes by default, 24 hours at most (obtaining_a_temporary_ak_sk.rst).
TEMPORARY_MIN_SECONDS = 15 * 60
TEMPORARY_MAX_SECONDS = 24 * 3600
TEMPORARY_DEFAULT_SECONDS = 15 * 60
MAX_DESCRIPTION = 255
_ACCESS_ALPHABET = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits
_ACCESS_LENGTH = 20
_SECRET_LENGTH = 40
# last_use_time is kept to the minute: a write per signed request would serialise readers on SQLite.
_LAST_USE_RESOLUTION = dt.timedelta(minutes=1)


class SecretCipher:
    """Encrypts secrets with the credential keys (primary key first, every key decrypts); a ring
    follows their rotations."""

    def __init__(self, keys: MultiFernet | KeyRing) -> None:
        self._keys = keys

    def seal(self, secret: str) -> str:
        return current(self._keys).encrypt(secret.encode("utf-8")).decode("ascii")

    def open(self, sealed: str) -> str:
        return current(self._keys).decrypt(sealed.encode("ascii")).decode("utf-8")


def reseal_all(session: Session, keys: MultiFernet) -> int:
    """Re-encrypt every stored secret under the primary of ``keys`` (a credential key rotation); how many.

    A rotation drops the oldest key: secrets still sealed under it would be lost, so they are moved
    to the primary first."""
    rows = session.scalars(select(AccessKey)).all()
    for row in rows:
        row.secret_encrypted = keys.rotate(row.secret_encrypted.encode("ascii")).decode("ascii")
    return len(rows)


@dataclass(frozen=True)
class IssuedKey:
    """A key just created; ``secret`` (and ``security_token``) exist in clear only here."""

    key: AccessKey
    secret: str
    security_token: str | None = None


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def token_digest(security_token: str) -> str:
    return hashlib.sha256(security_token.encode("utf-8")).hexdigest()


def is_temporary(key: AccessKey) -> bool:
    return key.security_token_hash is not None


# ---------------------------------------------------------------- management


def _check_description(description: str | None) -> None:
    if description is None:
        return
    if len(description) > MAX_DESCRIPTION:
        raise IamBadRequest(f"Invalid input for field 'description': at most {MAX_DESCRIPTION} characters.")
    if any(ord(c) < 32 for c in description):
        raise IamBadRequest("Invalid input for field 'description': control characters are not allowed.")


def _owner_for(session: Session, actor: Actor, user_id: str) -> User:
    user = session.get(User, user_id)
    if user is None or user.domain_id != actor.domain_id:
        raise IamNotFound(f"Could not find user: {user_id}.")
    if user.id != actor.user_id and not actor.is_admin:
        raise IamForbidden("You are not authorized to perform the requested action: only a security "
                           "administrator manages another user's access keys.")
    # An operator's keys would sign as the operator: only an operator (or itself) manages them.
    protect_operator(session, actor, user.id)
    return user


def _permanent_key(session: Session, actor: Actor, access: str) -> AccessKey:
    key = session.get(AccessKey, access)
    if key is None or is_temporary(key):
        raise IamNotFound(f"Could not find credential: {access}.")
    owner = session.get(User, key.user_id)
    if owner is None or owner.domain_id != actor.domain_id:
        raise IamNotFound(f"Could not find credential: {access}.")
    _owner_for(session, actor, owner.id)
    return key


def create_permanent(session: Session, cipher: SecretCipher, actor: Actor, *, user_id: str,
                     description: str | None, now: dt.datetime) -> IssuedKey:
    _check_description(description)
    user = _owner_for(session, actor, user_id)
    # Lock the user row so two concurrent creations cannot both pass the count (PostgreSQL; SQLite
    # serialises writers anyway).
    session.execute(select(User.id).where(User.id == user.id).with_for_update())
    count = session.scalar(select(func.count()).select_from(AccessKey).where(
        AccessKey.user_id == user.id, AccessKey.security_token_hash.is_(None)))
    if (count or 0) >= MAX_PERMANENT_KEYS:
        # The documented message, verbatim (creating_a_permanent_access_key.rst).
        raise IamBadRequest("akSkNumExceed")
    secret = _random(_SECRET_ALPHABET, _SECRET_LENGTH)
    key = AccessKey(access=_random(_ACCESS_ALPHABET, _ACCESS_LENGTH), user_id=user.id,
                    secret_encrypted=cipher.seal(secret), status=ACTIVE, description=description or "",
                    created_at=now, last_used_at=None, expires_at=None, security_token_hash=None)
    session.add(key)
    session.flush()
    return IssuedKey(key, secret)


def list_permanent(session: Session, actor: Actor, user_id: str | None) -> Sequence[AccessKey]:
    user = _owner_for(session, actor, user_id or actor.user_id)
    return session.scalars(select(AccessKey).where(
        AccessKey.user_id == user.id, AccessKey.security_token_hash.is_(None)
    ).order_by(AccessKey.created_at, AccessKey.access)).all()


def get_permanent(session: Session, actor: Actor, access: str) -> AccessKey:
    return _permanent_key(session, actor, access)


def update_permanent(session: Session, actor: Actor, access: str, *, status: str | None,
                     description: str | None) -> AccessKey:
    if status is not None and status not in STATUSES:
        raise IamBadRequest("Invalid input for field 'status': it must be 'active' or 'inactive'.")
    _check_description(description)
    key = _permanent_key(session, actor, access)
    if status is not None:
        key.status = status
    if description is not None:
        key.description = description
    session.flush()
    return key


def delete_permanent(session: Session, actor: Actor, access: str) -> None:
    session.delete(_permanent_key(session, actor, access))
    session.flush()


def create_temporary(session: Session, cipher: SecretCipher, *, user_id: str, now: dt.datetime,
                     duration: int, not_after: dt.datetime | None = None) -> IssuedKey:
    """A key valid ``duration`` seconds (never beyond ``not_after``: the credential that asked for it)."""
    if not TEMPORARY_MIN_SECONDS <= duration <= TEMPORARY_MAX_SECONDS:
        raise IamBadRequest(f"Invalid input for field 'duration_seconds': it must be between "
                            f"{TEMPORARY_MIN_SECONDS} and {TEMPORARY_MAX_SECONDS}.")
    expires_at = now + dt.timedelta(seconds=duration)
    if not_after is not None:
        expires_at = min(expires_at, not_after)
    # Expired temporary keys of this user are of no further use: drop them as new ones are made.
    session.execute(delete(AccessKey).where(AccessKey.user_id == user_id, AccessKey.expires_at.is_not(None),
                                            AccessKey.expires_at < now))
    secret = _random(_SECRET_ALPHABET, _SECRET_LENGTH)
    token = secrets.token_urlsafe(96)
    key = AccessKey(access=_random(_ACCESS_ALPHABET, _ACCESS_LENGTH), user_id=user_id,
                    secret_encrypted=cipher.seal(secret), status=ACTIVE, description="", created_at=now,
                    last_used_at=None, expires_at=expires_at, security_token_hash=token_digest(token))
    session.add(key)
    session.flush()
    return IssuedKey(key, secret, token)


# ---------------------------------------------------------------- signed requests


@dataclass(frozen=True)
class SignedIdentity:
    """Who a verified signature speaks for, with the roles of the project (or account) it selected."""

    access_key: str
    user_id: str
    domain_id: str
    project_id: str | None
    roles: tuple[str, ...]
    # Temporary keys: their expiry.
    expires_at: dt.datetime | None
    # Whether last_use_time is stale enough to be written (see ``record_use``).
    stale_last_use: bool


def authenticate_signed(session: Session, cipher: SecretCipher, auth: signing.Authorization,
                        request: signing.ReceivedRequest, sdk_date: str, *, now: dt.datetime,
                        security_token: str | None, project_id: str | None,
                        domain_id: str | None) -> SignedIdentity:
    """Verify a signed request's key and signature, then resolve its user and scope.

    The signature is checked before anything about the key's state is told, so only a holder of
    the secret learns that a key is disabled or expired.
    """
    key = session.get(AccessKey, auth.access_key)
    if key is None:
        raise signing.refused(f"the access key {auth.access_key} does not exist.")
    try:
        secret = cipher.open(key.secret_encrypted)
    except InvalidToken:
        # Encrypted under a key no longer in the repository: unusable until re-created.
        log.warning("access key %s cannot be decrypted with the credential key repository", key.access)
        raise signing.refused(f"the access key {key.access} cannot be used; create a new one.") from None
    if not signing.verify(auth, secret, request, sdk_date):
        raise signing.refused("the signature does not match; check the secret key and what is signed.")
    if key.status != ACTIVE:
        raise signing.refused(f"the access key {key.access} is inactive.")
    if is_temporary(key):
        if key.expires_at is not None and now >= key.expires_at:
            raise signing.refused("the security token has expired (temporary access key).")
        if not security_token:
            raise signing.refused("a temporary access key needs its X-Security-Token.")
        assert key.security_token_hash is not None
        if not hmac.compare_digest(token_digest(security_token), key.security_token_hash):
            raise signing.refused("the X-Security-Token does not belong to this access key.")
    user = session.get(User, key.user_id)
    if user is None:
        raise signing.refused(f"the user of access key {key.access} does not exist.")
    if not user.enabled:
        raise signing.refused(f"the user of access key {key.access} is disabled.")
    domain = session.get(Domain, user.domain_id)
    if domain is None or not domain.enabled:
        raise signing.refused("the account is disabled.")
    if domain_id is not None and domain_id != user.domain_id:
        raise _not_authorized("X-Domain-Id is not the account of the access key.")
    roles: tuple[str, ...]
    if project_id is not None:
        project = session.get(Project, project_id)
        roles = ()
        if project is not None and project.domain_id == user.domain_id and project.enabled \
                and project.status == "normal":
            roles = effective_roles(session, user.id, project=project)
        if not roles:
            # One answer for missing, foreign, disabled and role-less projects: no hint.
            raise _not_authorized(f"the user of access key {key.access} has no role on project {project_id[:64]}, "
                                  "or it does not exist.")
    else:
        roles = effective_roles(session, user.id, domain_id=user.domain_id)
    stale = key.last_used_at is None or now - key.last_used_at >= _LAST_USE_RESOLUTION
    return SignedIdentity(key.access, user.id, user.domain_id, project_id, roles, key.expires_at, stale)


def _not_authorized(reason: str) -> ApigError:
    return ApigError(f"The IAM user is not authorized to access the API: {reason}", status=403,
                     code="APIGW.0302")


def record_use(db: Database, access: str, now: dt.datetime) -> None:
    """Best effort: a failed bookkeeping write must not fail the request it accompanies."""
    try:
        with db.transaction() as s:
            key = s.get(AccessKey, access)
            if key is not None:
                key.last_used_at = now
    except SQLAlchemyError as exc:
        log.info("could not record the use of access key %s: %s", access, type(exc).__name__)
