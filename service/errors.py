"""Errors that carry their HTTP status; one handler in `service.main` renders them."""

from typing import Any


class ServiceError(Exception):
    status_code = 500
    error = "ServiceError"

    def __init__(self, detail: Any = None, *, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.detail = detail if detail is not None else self.__class__.__doc__
        self.headers = headers


class Damaged(ServiceError):
    """A stored artifact failed its digest check and is refused."""

    status_code = 500
    error = "ArtifactDamaged"


class BadRequest(ServiceError):
    """The request is malformed."""

    status_code = 400
    error = "BadRequest"


class Unauthenticated(ServiceError):
    """A valid API key is required."""

    status_code = 401
    error = "Unauthenticated"


class Forbidden(ServiceError):
    """This API key's role may not do that."""

    status_code = 403
    error = "Forbidden"


class NotFound(ServiceError):
    """No such resource."""

    status_code = 404
    error = "NotFound"


class Conflict(ServiceError):
    """The resource is not in a state that allows this."""

    status_code = 409
    error = "Conflict"


class Gone(ServiceError):
    """The resource existed and was deliberately removed."""

    status_code = 410
    error = "Gone"


class PayloadTooLarge(ServiceError):
    """The request body is too large."""

    status_code = 413
    error = "PayloadTooLarge"


class UnsupportedMediaType(ServiceError):
    """This endpoint takes a JSON body (Content-Type: application/json)."""

    status_code = 415
    error = "UnsupportedMediaType"


class Unprocessable(ServiceError):
    """The request names things that do not exist or may not be used."""

    status_code = 422
    error = "Unprocessable"


class Unavailable(ServiceError):
    """A backing service is unreachable; retry later."""

    status_code = 503
    error = "Unavailable"

    def __init__(self, detail: Any = None, *, retry_after: int = 5):
        super().__init__(detail, headers={"Retry-After": str(retry_after)})
