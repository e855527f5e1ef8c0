"""Labelling: next task, claims (claim, release, skip), assignments, annotations (drawn shapes
or painted masks; optimistic concurrency, size limits; merge and split), submit, review."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status

from api import auth
from api.deps import (
    MAX_ID,
    AnnotationLabel,
    AnnotationRead,
    CurrentUser,
    PathId,
    SessionDep,
    SettingsDep,
    WindowLabel,
    WindowRead,
    WindowReview,
)
from api.schemas.annotations import (
    AnnotationCreate,
    AnnotationMerge,
    AnnotationPublic,
    AnnotationSplit,
    AnnotationUpdate,
)
from api.schemas.windows import (
    AssignmentCreate,
    AssignmentPublic,
    ReviewCreate,
    ReviewPublic,
    WindowPublic,
)
from labeling.models import Annotation, Assignment, Review, WindowRecord
from labeling.services import annotation_edits as edits
from labeling.services import annotations as svc
from labeling.services import assignments, claims, reviews
from labeling.services.errors import InvalidInputError
from labeling.services.projects import get_project

router = APIRouter(tags=["labelling"])
IfMatch = Annotated[
    str | None,
    Header(description="The version read (ETag), e.g. '3' or 'W/\"3\"'; or send `version`"),
]


def _version(if_match: str | None, body_version: int | None) -> int:
    """The client's version from ``If-Match`` or the body; 428 when neither is given."""
    if if_match is not None:
        text = if_match.strip().removeprefix("W/").strip('"')
        if not text.isdigit() or len(text) > 9:
            raise InvalidInputError(f"If-Match {if_match!r} is not an annotation version")
        header = int(text)
        if body_version is not None and body_version != header:
            raise InvalidInputError("If-Match and version disagree; send one of them")
        return header
    if body_version is None:
        raise InvalidInputError(
            "an update must name the version it read",
            fix="send the annotation's version as If-Match or in the body's 'version'",
        )
    return body_version


def _etag(response: Response, annotation: Annotation) -> Annotation:
    response.headers["ETag"] = f'"{annotation.version}"'
    return annotation


@router.post(
    "/projects/{project_id}/tasks/next",
    response_model=WindowPublic,
    responses={204: {"description": "No task left for the caller"}},
)
def next_task(
    project_id: PathId, session: SessionDep, user: CurrentUser, settings: SettingsDep
) -> WindowRecord | Response:
    """Claim the caller's next task: one they hold, else one they did not skip, assigned ones
    first, windows with enough valid imagery first (the project's ``min_valid_fraction``);
    tasks claimed by others are never handed out. 204 when nothing is left."""
    auth.require(session, user=user, project_id=project_id, permission="label")
    project = get_project(session, project_id=project_id)
    window = assignments.next_task(
        session,
        project_id=project_id,
        user_id=user.id,
        lock_minutes=settings.lock_minutes,
        min_valid_fraction=project.setting("min_valid_fraction"),
    )
    if window is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return window


@router.post("/windows/{window_id}/claim", response_model=WindowPublic)
def claim(
    window: WindowLabel, session: SessionDep, user: CurrentUser, settings: SettingsDep
) -> WindowRecord:
    """Claim this task (or extend your claim) for ``EARTHPLAT_LOCK_MINUTES``; 423 naming the
    holder while someone else has it."""
    return claims.claim(
        session, window_id=window.id, user_id=user.id, minutes=settings.lock_minutes
    )


@router.post("/windows/{window_id}/release", response_model=WindowPublic)
def release(window: WindowLabel, session: SessionDep, user: CurrentUser) -> WindowRecord:
    """End your claim on this task; project admins may end anyone's."""
    force = auth.allowed(session, user=user, project_id=window.project_id, permission="manage")
    return claims.release(session, window_id=window.id, user_id=user.id, force=force)


@router.post("/windows/{window_id}/skip", response_model=WindowPublic)
def skip(window: WindowLabel, session: SessionDep, user: CurrentUser) -> WindowRecord:
    """Skip this task: your claim ends, and ``tasks/next`` offers it to you again only when
    nothing else is left."""
    return claims.skip(session, window_id=window.id, user_id=user.id)


@router.post(
    "/projects/{project_id}/assignments",
    response_model=list[AssignmentPublic],
    status_code=status.HTTP_201_CREATED,
)
def assign(
    project_id: PathId, body: AssignmentCreate, session: SessionDep, user: CurrentUser
) -> list[Assignment]:
    """Assign windows to a user (managers); a labeller may queue windows for themselves
    (``user_id`` = their own id), e.g. from "more like this"."""
    own = body.user_id == user.id
    auth.require(session, user=user, project_id=project_id, permission="label" if own else "manage")
    return assignments.assign(
        session, project_id=project_id, user_id=body.user_id, window_ids=body.window_ids
    )


@router.get("/projects/{project_id}/assignments", response_model=list[AssignmentPublic])
def list_assignments(
    project_id: PathId,
    session: SessionDep,
    user: CurrentUser,
    user_id: int | None = Query(None, ge=1, le=MAX_ID),
) -> list[Assignment]:
    auth.require(session, user=user, project_id=project_id, permission="read")
    return assignments.list_assignments(session, project_id=project_id, user_id=user_id)


@router.get("/windows/{window_id}/annotations", response_model=list[AnnotationPublic])
def list_annotations(window: WindowRead, session: SessionDep) -> list[Annotation]:
    return svc.list_annotations(session, window_id=window.id)


@router.post(
    "/windows/{window_id}/annotations",
    response_model=AnnotationPublic,
    status_code=status.HTTP_201_CREATED,
)
def create_annotation(
    window: WindowLabel,
    body: AnnotationCreate,
    session: SessionDep,
    user: CurrentUser,
    settings: SettingsDep,
    response: Response,
) -> Annotation:
    """Add an annotation; the window must be free or claimed by you (writing claims it). Send a
    ``geometry`` (a drawn shape) or a ``mask`` (painted pixels on the window's grid, segmentation
    projects): a mask's geometry is derived from its pixels, and a geometry sent with it is
    ignored."""
    project = get_project(session, project_id=window.project_id)
    row = svc.create_annotation(
        session,
        project=project,
        window_id=window.id,
        author_id=user.id,
        geometry=body.geometry,
        mask=body.mask.model_dump() if body.mask is not None else None,
        class_value=body.class_value,
        value=body.value,
        properties=body.properties,
        limits=settings.annotation_limits(),
        lock_minutes=settings.lock_minutes,
    )
    return _etag(response, row)


@router.get("/annotations/{annotation_id}", response_model=AnnotationPublic)
def read_annotation(row: AnnotationRead, response: Response) -> Annotation:
    return _etag(response, row)


@router.patch("/annotations/{annotation_id}", response_model=AnnotationPublic)
def update_annotation(
    row: AnnotationLabel,
    body: AnnotationUpdate,
    session: SessionDep,
    user: CurrentUser,
    settings: SettingsDep,
    response: Response,
    if_match: IfMatch = None,
) -> Annotation:
    """Change an annotation if it is still at the version the client read; a stale version
    gets 409 and changes nothing. A ``mask`` replaces the pixels (and the derived geometry)."""
    version = _version(if_match, body.version)
    project = get_project(session, project_id=row.project_id)
    changes = body.model_dump(exclude_unset=True, exclude={"version"})
    updated = svc.update_annotation(
        session,
        project=project,
        annotation_id=row.id,
        version=version,
        author_id=user.id,
        changes=changes,
        limits=settings.annotation_limits(),
        lock_minutes=settings.lock_minutes,
    )
    return _etag(response, updated)


@router.post("/annotations/merge", response_model=AnnotationPublic)
def merge_annotations(
    body: AnnotationMerge,
    session: SessionDep,
    user: CurrentUser,
    settings: SettingsDep,
    response: Response,
) -> Annotation:
    """Merge annotations of one class on one window into the first of ``ids`` (polygons: their
    union; masks: the union of their pixels); the others are deleted, in one transaction.
    ``versions`` names the version read of each; a stale one gets 409 and changes nothing."""
    rows = [svc.get_annotation(session, annotation_id=i) for i in body.ids]
    for project_id in sorted({r.project_id for r in rows}):
        auth.require(session, user=user, project_id=project_id, permission="label")
    merged = edits.merge_annotations(
        session,
        ids=body.ids,
        versions=body.versions,
        author_id=user.id,
        limits=settings.annotation_limits(),
        lock_minutes=settings.lock_minutes,
    )
    return _etag(response, merged)


@router.post("/annotations/{annotation_id}/split", response_model=list[AnnotationPublic])
def split_annotation(
    row: AnnotationLabel,
    body: AnnotationSplit,
    session: SessionDep,
    user: CurrentUser,
    settings: SettingsDep,
    if_match: IfMatch = None,
) -> list[Annotation]:
    """Cut a polygon along ``line``: the largest part stays in this annotation, each other part
    becomes a new annotation of the same class (the kept one is first in the answer)."""
    return edits.split_annotation(
        session,
        annotation_id=row.id,
        version=_version(if_match, body.version),
        line=body.line,
        author_id=user.id,
        limits=settings.annotation_limits(),
        lock_minutes=settings.lock_minutes,
    )


@router.delete("/annotations/{annotation_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_annotation(
    row: AnnotationLabel,
    session: SessionDep,
    user: CurrentUser,
    settings: SettingsDep,
    if_match: IfMatch = None,
    version: int | None = Query(None, ge=1, lt=2**31),
) -> Response:
    """Delete an annotation at the version read (If-Match or ``?version=``)."""
    svc.delete_annotation(
        session,
        annotation_id=row.id,
        version=_version(if_match, version),
        user_id=user.id,
        lock_minutes=settings.lock_minutes,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/windows/{window_id}/submit", response_model=WindowPublic)
def submit(window: WindowLabel, session: SessionDep, user: CurrentUser) -> WindowRecord:
    """in_progress -> submitted; needs your current claim on the window (423 otherwise)."""
    return reviews.submit(session, window_id=window.id, user_id=user.id)


@router.post(
    "/windows/{window_id}/reviews", response_model=ReviewPublic, status_code=status.HTTP_201_CREATED
)
def review(
    window: WindowReview, body: ReviewCreate, session: SessionDep, user: CurrentUser
) -> Review:
    """Accept or reject a submitted task (reviewers and admins; not your own submission unless
    the project's ``self_review`` setting allows it)."""
    return reviews.review(
        session,
        window_id=window.id,
        reviewer_id=user.id,
        decision=body.decision,
        comment=body.comment,
    )


@router.get("/windows/{window_id}/reviews", response_model=list[ReviewPublic])
def list_reviews(window: WindowRead, session: SessionDep) -> list[Review]:
    return reviews.list_reviews(session, window_id=window.id)
