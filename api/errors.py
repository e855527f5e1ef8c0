"""Errors -> clear JSON responses: ``{"detail": what was wrong, "fix": what to do}``.

The hierarchy itself lives in ``labeling.services.errors`` (the services raise it; the API only
maps it), re-exported here. earthplat's own errors (bad windows, unknown sensors) become 422; a
local source path outside the server's source roots too, with the fix ``source_roots_fix``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError as DBDataError
from sqlalchemy.exc import IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from earthplat.data.sources.roots import SourceRootError
from earthplat.errors import EarthplatError
from labeling.services.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    PlatformError,
    TooLargeError,
)

__all__ = [
    "AuthenticationError",
    "ConflictError",
    "InvalidInputError",
    "NotFoundError",
    "PermissionDeniedError",
    "PlatformError",
    "TooLargeError",
    "install_handlers",
]


def error_response(status: int, detail: Any, fix: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse(
        status_code=status,
        content={"detail": jsonable_encoder(detail), "fix": fix},
        headers=headers,
    )


async def _platform(request: Request, exc: PlatformError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return error_response(exc.status, exc.detail, exc.fix, headers)


async def _earthplat(request: Request, exc: EarthplatError) -> JSONResponse:
    return error_response(422, str(exc), "correct the input named in the message")


def source_roots_fix(exc: SourceRootError) -> str:
    """What to do about a local source path outside the roots (also a failed job's advice)."""
    where = ", ".join(str(r) for r in exc.roots) or "none"
    return (
        "set EARTHPLAT_SOURCE_ROOTS (folders separated by ',' or os.pathsep) to include the "
        f"file's folder, or move the file under one of the current roots ({where})"
    )


async def _source_root(request: Request, exc: SourceRootError) -> JSONResponse:
    return error_response(422, str(exc), source_roots_fix(exc))


async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    return error_response(
        422, errors, "correct the fields named in 'loc'; the schemas are at /docs"
    )


async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    fixes = {
        404: "check the URL; the API lives under /api/v1 and is listed at /docs",
        405: "use a method this path accepts (see /docs)",
    }
    return error_response(
        exc.status_code,
        exc.detail,
        fixes.get(exc.status_code, "see the API documentation at /docs"),
        getattr(exc, "headers", None),
    )


async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
    return error_response(
        409,
        "the change conflicts with existing data (a duplicate or a missing reference)",
        "re-read the resources involved and retry",
    )


async def _out_of_range(request: Request, exc: Exception) -> JSONResponse:
    return error_response(
        422,
        "a number in the request is out of range for the database (ids are 32-bit integers)",
        "send ids and counts between 1 and 2147483647",
    )


async def _operational(request: Request, exc: OperationalError) -> JSONResponse:
    return error_response(
        503, "the database is busy or unreachable", "retry in a moment", {"Retry-After": "1"}
    )


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(PlatformError, _platform)
    app.add_exception_handler(EarthplatError, _earthplat)
    app.add_exception_handler(SourceRootError, _source_root)  # the more specific class wins
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(IntegrityError, _integrity)
    app.add_exception_handler(OperationalError, _operational)
    # safety net for routes that pass unbounded integers to the database
    app.add_exception_handler(OverflowError, _out_of_range)
    app.add_exception_handler(DBDataError, _out_of_range)
