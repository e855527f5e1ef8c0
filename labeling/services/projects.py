"""Projects and their members."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from labeling.db import utcnow
from labeling.models import ROLES, ModelEntry, Project, ProjectMember, User
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
    if "settings" in changes:  # a patch: merged into the project's own values
        changes = {**changes, "settings": {**(project.settings or {}), **changes["settings"]}}
    for key, value in changes.items():
        setattr(project, key, value)
    project.updated_at = utcnow()
    session.commit()
    return project


log = logging.getLogger("earthplat.projects")
ACTIVE_JOB_STATUSES = ("queued", "running")


def delete_project(session: Session, *, project_id: int, data_dir: Path | None = None) -> None:
    """Delete a project, its rows (windows, annotations, jobs ... cascade) and, given the
    platform's ``data_dir``, its files under ``data_dir/projects/ID``.

    Refused (409) while any of its jobs is queued or running under a live lease (the project
    row is locked first, so a job cannot be enqueued between the check and the delete).
    Registered models outlive the project: the files of each one that live under the project
    directory are first linked (or copied) into ``data_dir/models/ID`` and its registry paths
    rewritten, in the same transaction as the deletion; the project directory is removed only
    after that commits, so a failure at any point loses no model and leaves no row pointing at
    deleted files."""
    from labeling.jobs import Job

    get_project(session, project_id=project_id)
    session.execute(select(Project.id).where(Project.id == project_id).with_for_update())
    live = (Job.status == "queued") | (
        (Job.status == "running") & (Job.lease_expires_at >= utcnow())
    )  # a running job whose lease expired has no worker left; it cannot write any more
    active = session.scalars(select(Job.id).where(Job.project_id == project_id, live)).all()
    if active:
        raise ConflictError(
            f"project {project_id} has {len(active)} queued or running job(s): {list(active)}",
            fix="cancel them (POST /api/v1/jobs/{id}/cancel), wait until they stop, and retry",
        )
    project_dir = None
    if data_dir is not None:
        project_dir = Path(data_dir).expanduser().resolve() / "projects" / str(project_id)
        models = session.scalars(select(ModelEntry).where(ModelEntry.project_id == project_id))
        for entry in models:
            _keep_model_files(entry, project_dir, project_dir.parent.parent / "models")
    session.delete(session.get(Project, project_id))
    session.commit()
    if project_dir is not None and project_dir.is_dir():
        try:
            shutil.rmtree(project_dir)
        except OSError as e:  # the rows are gone; a leftover directory is only disk space
            log.warning(
                "project %s deleted, but removing %s failed: %s", project_id, project_dir, e
            )


def _link_or_copy(src: str, dst: str) -> None:
    """A hard link (instant, no extra space; the file survives the project's rmtree), or a
    copy across file systems."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _keep_model_files(entry: ModelEntry, project_dir: Path, models_dir: Path) -> None:
    """Move the model's files out of ``project_dir`` (run dir, export dir, artifacts) into
    ``models_dir/ID`` and rewrite its paths; other project files it names become ``None``."""
    inside = sorted(
        {
            Path(p).resolve()
            for p in (entry.run_dir, entry.model_dir)
            if p and Path(p).resolve().is_relative_to(project_dir)
        },
        key=lambda p: len(p.parts),
    )
    roots: list[Path] = []  # outermost first: a run dir also holds its export (run_dir/model)
    for p in inside:
        if not any(p.is_relative_to(r) for r in roots):
            roots.append(p)
    target = models_dir / str(entry.id)
    moves: dict[Path, Path] = {}
    for i, src in enumerate(roots):
        dst = target / (src.name if i == 0 else f"{i}-{src.name}")
        if src.is_dir() and not dst.is_dir():
            partial = dst.with_name(dst.name + ".partial")  # never trust a half copy
            shutil.rmtree(partial, ignore_errors=True)
            shutil.copytree(src, partial, symlinks=True, copy_function=_link_or_copy)
            partial.rename(dst)
        moves[src] = dst

    def moved(path: str | None) -> str | None:
        if not path:
            return path
        p = Path(path).resolve()
        for src, dst in moves.items():
            if p.is_relative_to(src):
                return str(dst / p.relative_to(src))
        return None if p.is_relative_to(project_dir) else path

    entry.run_dir, entry.model_dir = moved(entry.run_dir), moved(entry.model_dir)
    entry.artifacts = {
        k: moved(v) if isinstance(v, str) else v for k, v in (entry.artifacts or {}).items()
    }


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
