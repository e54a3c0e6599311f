"""The one error catalogue.

Exception tree::

    ServiceError                    status + stable code + message, rendered by api.errors
    ├── ImsError                    IMS wire shape: {"error": {"code": "IMG.xxxx", "message": …}}
    │   ├── NotFound                (404)
    │   └── ...
    ├── IamError                    Keystone shape: {"error": {"code": 401, "title": …, "message": …}}
    │   ├── Unauthorized            (401)
    │   ├── Forbidden               (403)
    │   └── ...
    ├── ApigError                   API-gateway shape: {"error_code": "APIGW.0301", "error_msg": …} (AK/SK)
    └── ServiceUnavailable          (503 + Retry-After) the database could not be had in time; IMS or Keystone
                                    shape by route family

Domain services raise these; HTTP handlers never build error bodies themselves.
"""

from __future__ import annotations


class ServiceError(Exception):
    status: int = 500
    code: str = "IMG.0061"
    title: str = "Internal Server Error"
    # Seconds a client should wait before trying again (the Retry-After header), when it should.
    retry_after: int | None = None

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code


class ImsError(ServiceError):
    """An IMS-style error; ``code`` comes from the IMS error-code table."""

    title = "Bad Request"

    status = 400
    code = "IMG.0001"


class BadRequest(ImsError):
    status = 400
    code = "IMG.0001"


class NotFound(ImsError):
    status = 404
    code = "IMG.0027"
    title = "Not Found"


class ImsForbidden(ImsError):
    status = 403
    code = "IMG.0026"
    title = "Forbidden"


class Conflict(ImsError):
    status = 409
    code = "IMG.0035"


class QuotaExceeded(ImsError):
    status = 400
    code = "IMG.0015"


class IamError(ServiceError):
    """A Keystone-style error."""

    status = 400
    title = "Bad Request"


class IamBadRequest(IamError):
    status = 400
    title = "Bad Request"


class Unauthorized(IamError):
    status = 401
    title = "Unauthorized"


class Forbidden(IamError):
    status = 403
    title = "Forbidden"


class IamNotFound(IamError):
    status = 404
    title = "Not Found"


class IamConflict(IamError):
    status = 409
    title = "Conflict"


class TooManyRequests(IamError):
    status = 429
    title = "Too Many Requests"


class ApigError(ServiceError):
    """A refused AK/SK-signed request, in the API gateway's shape ``{"error_code", "error_msg"}``,
    which the official SDK parses into ``error_code`` / ``error_msg``."""

    status = 401
    code = "APIGW.0301"  # incorrect IAM authentication information
    title = "Unauthorized"


class ServiceUnavailable(ServiceError):
    """The database could not be had within the bounded wait (busy, pool exhausted, or down).

    Nothing was changed; the request may be repeated as it is after ``Retry-After`` seconds. IMG.0060
    is IMS's "wait for a while and then try again" code; IAM routes answer in Keystone's shape.
    """

    status = 503
    code = "IMG.0060"
    title = "Service Unavailable"
    retry_after = 1
