"""Projects and their members."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response, status

from api import auth
from api.deps import CurrentUser, PathId, SessionDep, SettingsDep
from api.schemas.projects import (
    MemberPublic,
    MemberUpdate,
    ProjectCreate,
    ProjectPublic,
    ProjectUpdate,
    TaskPublic,
)
from labeling.models import Project, ProjectMember
from labeling.services import projects as svc

router = APIRouter(tags=["projects"])


@router.get("/tasks", response_model=list[TaskPublic])
def list_tasks(user: CurrentUser) -> list[TaskPublic]:
    """The task registry: what each project task type labels and predicts."""
    from earthplat.tasks import TASKS

    return [
        TaskPublic(
            name=t.name,
            description=t.description,
            class_task=t.class_task,
            per_window=t.per_window,
            pixel_classes=t.pixel_classes,
            output=t.output,
        )
        for t in TASKS.values()
    ]


@router.post("/projects", response_model=ProjectPublic, status_code=status.HTTP_201_CREATED)
def create_project(body: ProjectCreate, session: SessionDep, user: CurrentUser) -> Project:
    """Create a project; the caller becomes its admin."""
    fields = body.model_dump(mode="python")
    fields["settings"] = body.settings.model_dump(exclude_unset=True)
    return svc.create_project(session, owner=user, **fields)


@router.get("/projects", response_model=list[ProjectPublic])
def list_projects(
    session: SessionDep,
    user: CurrentUser,
    offset: int = Query(0, ge=0),
    limit: int = Query(100, ge=1, le=1000),
) -> list[Project]:
    return svc.list_projects(session, user=user, offset=offset, limit=limit)


@router.get("/projects/{project_id}", response_model=ProjectPublic)
def read_project(project_id: PathId, session: SessionDep, user: CurrentUser) -> Project:
    auth.require(session, user=user, project_id=project_id, permission="read")
    return svc.get_project(session, project_id=project_id)


@router.patch("/projects/{project_id}", response_model=ProjectPublic)
def update_project(
    project_id: PathId, body: ProjectUpdate, session: SessionDep, user: CurrentUser
) -> Project:
    auth.require(session, user=user, project_id=project_id, permission="manage")
    changes = body.model_dump(mode="python", exclude_unset=True)  # nested settings too
    return svc.update_project(session, project_id=project_id, changes=changes)


@router.delete("/projects/{project_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_project(
    project_id: PathId, session: SessionDep, user: CurrentUser, settings: SettingsDep
) -> Response:
    """Delete the project and its files (409 while a job of its is queued or running);
    registered models are kept, their files moved under ``DATA_DIR/models``."""
    auth.require(session, user=user, project_id=project_id, permission="manage")
    svc.delete_project(session, project_id=project_id, data_dir=settings.data_dir)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/projects/{project_id}/members", response_model=list[MemberPublic])
def list_members(project_id: PathId, session: SessionDep, user: CurrentUser) -> list:
    auth.require(session, user=user, project_id=project_id, permission="read")
    return svc.list_members(session, project_id=project_id)


@router.put("/projects/{project_id}/members/{user_id}", response_model=MemberPublic)
def set_member(
    project_id: PathId, user_id: PathId, body: MemberUpdate, session: SessionDep, user: CurrentUser
) -> ProjectMember:
    """Give a user a role in the project (admin, reviewer, labeler, viewer)."""
    auth.require(session, user=user, project_id=project_id, permission="manage")
    return svc.set_member(session, project_id=project_id, user_id=user_id, role=body.role)


@router.delete("/projects/{project_id}/members/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_member(
    project_id: PathId, user_id: PathId, session: SessionDep, user: CurrentUser
) -> Response:
    auth.require(session, user=user, project_id=project_id, permission="manage")
    svc.remove_member(session, project_id=project_id, user_id=user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
