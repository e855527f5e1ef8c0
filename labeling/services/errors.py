"""The platform's one exception hierarchy (labelling services and the API).

Each error carries the HTTP status the API answers with and a ``fix``: what the caller should do.
``api.errors`` maps them to ``{"detail": ..., "fix": ...}`` JSON responses.
"""

from __future__ import annotations

from earthplat.errors import EarthplatError


class PlatformError(EarthplatError):
    """Base of the errors the platform raises on purpose."""

    status: int = 400
    default_fix: str = "check the request against the API documentation at /docs"

    def __init__(self, detail: str, fix: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fix = fix or self.default_fix


class InvalidInputError(PlatformError, ValueError):
    """A request that is well-formed but not acceptable (unknown class, invalid geometry, ...)."""

    status = 422
    default_fix = "correct the named field and send the request again"


class NotFoundError(PlatformError, LookupError):
    status = 404
    default_fix = "check the id; list the collection to see what exists"


class ConflictError(PlatformError):
    """A stale version, a duplicate name, or a status transition that is not allowed."""

    status = 409
    default_fix = "re-read the resource and retry with its current state"


class AuthenticationError(PlatformError):
    status = 401
    default_fix = "send 'Authorization: Bearer <API key>'; an admin creates keys"


class PermissionDeniedError(PlatformError):
    status = 403
    default_fix = "ask a project admin for a role that allows this"


class TooLargeError(PlatformError):
    status = 413
    default_fix = "send a smaller file (crop or tile it), or raise EARTHPLAT_MAX_UPLOAD_MB"


class LockedError(PlatformError):
    """The window is claimed by someone else."""

    status = 423
    default_fix = "take another task (POST /projects/{id}/tasks/next), or wait for the claim to end"
