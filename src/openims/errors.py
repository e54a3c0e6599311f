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
    │   └── IamTooManyRequests      429  (a locked-out user)
    │       └── IamRateLimited      429 + Retry-After: a rate limit of logins or token issuance
    ├── ApigError                   API-gateway shape: {"error_code": "APIGW.0301", "error_msg": …} (AK/SK)
    │   └── ApigThrottled           429  APIGW.0308 + Retry-After: too many signature failures
    └── ServiceUnavailable          503 + Retry-After: the database could not be had in time
"""

from __future__ import annotations

# Reason phrases as Keystone writes them (pinned here: newer Pythons renamed some of http.HTTPStatus's).
TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
          405: "Method Not Allowed", 406: "Not Acceptable", 409: "Conflict", 410: "Gone",
          413: "Request Entity Too Large", 415: "Unsupported Media Type",
          416: "Requested Range Not Satisfiable", 429: "Too Many Requests", 500: "Internal Server Error",
          503: "Service Unavailable"}


def title_of(status: int) -> str:
    return TITLES.get(status, "Error")


class ServiceError(Exception):
    """Status and code are declared per class, as class arguments: ``class X(ImsError, status=404)``."""

    status: int = 500
    code: str = "IMG.0061"
    # Seconds a client should wait before trying again (the Retry-After header), when it should.
    retry_after: int | None = None

    def __init_subclass__(cls, *, status: int | None = None, code: str | None = None,
                          retry_after: int | None = None, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if status is not None:
            cls.status = status
        if code is not None:
            cls.code = code
        if retry_after is not None:
            cls.retry_after = retry_after

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

    @property
    def title(self) -> str:
        return title_of(self.status)


class ImsError(ServiceError, status=400, code="IMG.0001"):
    """An IMS-style error; ``code`` comes from the IMS error-code table."""


class ImsBadRequest(ImsError, status=400, code="IMG.0001"):
    """Most validation; the code names the rule broken."""


class ImsNotFound(ImsError, status=404, code="IMG.0027"):
    """Missing, or not the caller's to see (another tenant's resource is not found, not forbidden)."""


class ImsForbidden(ImsError, status=403, code="IMG.0026"):
    """The caller may see the resource but not do this to it."""


class ImsConflict(ImsError, status=409, code="IMG.0035"):
    """The resource's state does not allow the action (yet)."""


class ImsQuotaExceeded(ImsError, status=400, code="IMG.0015"):
    """The project's quota would be exceeded; IMS answers this with 400."""


class ImsUploadTooLarge(ImsError, status=413, code="IMG.0059"):
    """An uploaded image larger than the service accepts."""


class ImsUploadGone(ImsError, status=410, code="IMG.0144"):
    """The image was deleted while its data was being uploaded."""


class ImsUploadLeaseLost(ImsConflict):
    """The upload stopped holding its image (it stalled past its lease and the sweep took the image back)."""


class ImsUploadFailed(ImsError, status=500, code="IMG.0061"):
    """A failure on our side (qemu-img crashed or timed out), not in the uploaded data."""


class ImsPayloadTooLarge(ImsError, status=413, code="IMG.0001"):
    """Too many custom properties, or a body past its bound."""


class ImsUnsupportedMediaType(ImsError, status=415, code="IMG.0001"):
    """A body in a content type the route does not take (e.g. a patch without its media type)."""


class ImsRangeNotSatisfiable(ImsError, status=416, code="IMG.0001"):
    """A download range outside the image; carries Content-Range."""


class IamError(ServiceError, status=400):
    """A Keystone-style error."""


class IamBadRequest(IamError, status=400):
    """A malformed IAM request."""


class IamUnauthorized(IamError, status=401):
    """No valid credentials; rendered in Keystone's shape on every route (authentication is IAM's)."""


class IamForbidden(IamError, status=403):
    """Authenticated, but the role does not allow it."""


class IamNotFound(IamError, status=404):
    """Missing, or in another account."""


class IamConflict(IamError, status=409):
    """A name already taken, or a state that does not allow the change."""


class IamTooManyRequests(IamError, status=429):
    """Too many failed logins: the user is locked out for a while."""


class IamRateLimited(IamTooManyRequests):
    """A rate limit (iam.ratelimit) refused the request before it was tried; Retry-After says when the
    window ends. Never counted as a failed login."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ApigError(ServiceError, status=401, code="APIGW.0301"):
    """A refused AK/SK-signed request, in the API gateway's shape ``{"error_code", "error_msg"}``,
    which the official SDK parses into ``error_code`` / ``error_msg``. APIGW.0301: incorrect IAM
    authentication information."""


class ApigThrottled(ApigError, status=429, code="APIGW.0308"):
    """Too many failed signatures for an access key or from an address (iam.ratelimit): refused before
    the signature is checked, as the gateway's throttling (APIGW.0308) with Retry-After."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ServiceUnavailable(ServiceError, status=503, code="IMG.0060", retry_after=1):
    """The database could not be had within the bounded wait (busy, pool exhausted, or down).

    Nothing was changed; the request may be repeated as it is after ``Retry-After`` seconds. IMG.0060
    is IMS's "wait for a while and then try again" code; IAM routes answer in Keystone's shape.
    """
