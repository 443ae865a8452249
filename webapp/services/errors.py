"""Domain errors raised by the service layer; the web layer translates them to statuses."""


class DomainError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str = "", fields: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message or self.__class__.__name__
        self.fields = fields or {}


class BadRequest(DomainError):
    """Well-formed input that names things that do not go together (a 400)."""


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class ValidationError(DomainError):
    """Bad input; `fields` maps each offending field to its message."""

    status = 422
    code = "validation_error"

    def __init__(self, fields: dict[str, str], message: str = "Please correct the highlighted fields."):
        super().__init__(message, fields)


class Conflict(DomainError):
    status = 409
    code = "conflict"


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"


class Gone(DomainError):
    """Something that existed and no longer can be used (an expired, used or revoked invitation)."""

    status = 410
    code = "gone"
