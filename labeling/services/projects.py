"""Projects and their members."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.database import utcnow
from labeling.models import ROLES, Project, ProjectMember, User
from labeling.services.errors import ConflictError, InvalidInputError, NotFoundError


def create_project(session: Session, *, owner: User, **fields: Any) -> Project:
    """A project; its creator becomes its admin."""
    if session.scalar(select(Project.id).where(Project.name == fields["name"])) is not None:
        raise ConflictError(f"a project named {fields['name']!r} exists", fix="pick another name")
    project = Project(created_by=owner.id, **fields)
    session.add(project)
    session.flush()
    session.add(ProjectMember(project_id=project.id, user_id=owner.id, role="admin"))
    session.commit()
    return project


def get_project(session: Session, *, project_id: int) -> Project:
    project = session.get(Project, project_id)
    if project is None:
        raise NotFoundError(f"no project {project_id}")
    return project


def list_projects(session: Session, *, user: User, offset: int = 0, limit: int = 100) -> list:
    query = select(Project).order_by(Project.id).offset(offset).limit(limit)
    if not user.is_admin:
        query = query.join(ProjectMember, ProjectMember.project_id == Project.id).where(
            ProjectMember.user_id == user.id
        )
    return list(session.scalars(query))


def update_project(session: Session, *, project_id: int, changes: dict[str, Any]) -> Project:
    project = get_project(session, project_id=project_id)
    name = changes.get("name")
    taken = select(Project.id).where(Project.name == name)
    if name and name != project.name and session.scalar(taken) is not None:
        raise ConflictError(f"a project named {name!r} exists", fix="pick another name")
    start = changes.get("start", project.start)
    end = changes.get("end", project.end)
    if start and end and end <= start:
        raise InvalidInputError("the project's end must be after its start")
    for key, value in changes.items():
        setattr(project, key, value)
    project.updated_at = utcnow()
    session.commit()
    return project


def delete_project(session: Session, *, project_id: int) -> None:
    project = get_project(session, project_id=project_id)
    session.delete(project)
    session.commit()


def set_member(session: Session, *, project_id: int, user_id: int, role: str) -> ProjectMember:
    if role not in ROLES:
        raise InvalidInputError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    get_project(session, project_id=project_id)
    if session.get(User, user_id) is None:
        raise NotFoundError(f"no user {user_id}")
    member = session.scalar(
        select(ProjectMember).where(
            ProjectMember.project_id == project_id, ProjectMember.user_id == user_id
        )
    )
    if member is None:
        member = ProjectMember(project_id=project_id, user_id=user_id, role=role)
        session.add(member)
    member.role = role
    session.commit()
    return member


def list_members(session: Session, *, project_id: int) -> list[ProjectMember]:
    return list(
        session.scalars(
            select(ProjectMember)
            .where(ProjectMember.project_id == project_id)
            .order_by(ProjectMember.user_id)
        )
    )


def remove_member(session: Session, *, project_id: int, user_id: int) -> None:
    member = session.scalar(
        select(ProjectMember).where(
            ProjectMember.project_id == project_id, ProjectMember.user_id == user_id
        )
    )
    if member is None:
        raise NotFoundError(f"user {user_id} is not a member of project {project_id}")
    session.delete(member)
    session.commit()
