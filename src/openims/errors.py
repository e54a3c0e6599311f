"""The one error catalogue: every error a client can be answered with.

Names say their wire family: ``Ims…`` render in the IMS shape, ``Iam…`` in Keystone's, ``Apig…``
in the API gateway's; ``ServiceUnavailable`` takes the shape of the route family it happens on.
Domain services raise these; HTTP handlers never build error bodies themselves, and routes never
raise Starlette's ``HTTPException`` (api.errors renders everything).

Exception tree::

    ServiceError                    status + stable code + message (+ Retry-After, headers), rendered by api.errors
    ├── ImsError                    IMS shape: {"error": {"code": "IMG.xxxx", "message": …}}
    │   ├── ImsBadRequest           400  IMG.0001 (most validation; the code names the rule)
    │   ├── ImsQuotaExceeded        400  IMG.0015
    │   ├── ImsForbidden            403  IMG.0026
    │   ├── ImsNotFound             404  IMG.0027
    │   ├── ImsConflict             409  IMG.0035
    │   │   └── ImsUploadLeaseLost  409  the upload stalled past its lease
    │   ├── ImsUploadGone           410  IMG.0144 the image was deleted during its upload
    │   ├── ImsPayloadTooLarge      413  IMG.0001 too many custom properties
    │   ├── ImsUploadTooLarge       413  IMG.0059
    │   ├── ImsUnsupportedMediaType 415
    │   ├── ImsRangeNotSatisfiable  416  (with Content-Range)
    │   └── ImsUploadFailed         500  IMG.0061 qemu-img failed on our side
    ├── IamError                    Keystone shape: {"error": {"code": 401, "title": …, "message": …}}
    │   ├── IamBadRequest           400
    │   ├── IamUnauthorized         401  (also for 401s on IMS routes: authentication is IAM's)
    │   ├── IamForbidden            403
    │   ├── IamNotFound             404
    │   ├── IamConflict             409
    │   └── IamTooManyRequests      429
    ├── ApigError                   API-gateway shape: {"error_code": "APIGW.0301", "error_msg": …} (AK/SK)
    └── ServiceUnavailable          503 + Retry-After: the database could not be had in time
"""

from __future__ import annotations


class ServiceError(Exception):
    status: int = 500
    code: str = "IMG.0061"
    title: str = "Internal Server Error"
    # Seconds a client should wait before trying again (the Retry-After header), when it should.
    retry_after: int | None = None

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        # Response headers the error carries (e.g. Content-Range of a 416).
        self.headers = headers or {}
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code


class ImsError(ServiceError):
    """An IMS-style error; ``code`` comes from the IMS error-code table."""

    title = "Bad Request"

    status = 400
    code = "IMG.0001"


class ImsBadRequest(ImsError):
    status = 400
    code = "IMG.0001"


class ImsNotFound(ImsError):
    status = 404
    code = "IMG.0027"
    title = "Not Found"


class ImsForbidden(ImsError):
    status = 403
    code = "IMG.0026"
    title = "Forbidden"


class ImsConflict(ImsError):
    status = 409
    code = "IMG.0035"


class ImsQuotaExceeded(ImsError):
    status = 400
    code = "IMG.0015"


class ImsUploadTooLarge(ImsError):
    status = 413
    code = "IMG.0059"
    title = "Request Entity Too Large"


class ImsUploadGone(ImsError):
    status = 410
    code = "IMG.0144"
    title = "Gone"


class ImsUploadLeaseLost(ImsConflict):
    """The upload stopped holding its image (it stalled past its lease and the sweep took the image back)."""


class ImsUploadFailed(ImsError):
    """A failure on our side (qemu-img crashed or timed out), not in the uploaded data."""

    status = 500
    code = "IMG.0061"
    title = "Internal Server Error"


class ImsPayloadTooLarge(ImsError):
    status = 413
    code = "IMG.0001"


class ImsUnsupportedMediaType(ImsError):
    status = 415
    code = "IMG.0001"
    title = "Unsupported Media Type"


class ImsRangeNotSatisfiable(ImsError):
    status = 416
    code = "IMG.0001"
    title = "Requested Range Not Satisfiable"


class IamError(ServiceError):
    """A Keystone-style error."""

    status = 400
    title = "Bad Request"


class IamBadRequest(IamError):
    status = 400
    title = "Bad Request"


class IamUnauthorized(IamError):
    status = 401
    title = "Unauthorized"


class IamForbidden(IamError):
    status = 403
    title = "Forbidden"


class IamNotFound(IamError):
    status = 404
    title = "Not Found"


class IamConflict(IamError):
    status = 409
    title = "Conflict"


class IamTooManyRequests(IamError):
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
