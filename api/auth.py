"""API keys, users and project roles.

A key is ``ep_`` + 43 URL-safe characters (256 random bits); the database stores only its
SHA-256. Platform admins (``users.is_admin``) hold every role in every project; other users hold
one role per project (``project_members``): admin > reviewer > labeler > viewer.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from labeling.models import ROLES, ApiKey, Project, ProjectMember, User
from labeling.services.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)

PERMISSIONS = {
    "viewer": {"read"},
    "labeler": {"read", "label"},
    "reviewer": {"read", "label", "review"},
    "admin": {"read", "label", "review", "manage"},
}
"""What each project role may do."""


def generate_key() -> str:
    return "ep_" + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def authenticate(session: Session, *, key: str | None) -> User:
    """The user owning ``key``; ``AuthenticationError`` for a missing, unknown or revoked key."""
    if not key:
        raise AuthenticationError("this endpoint needs an API key and the request had none")
    row = session.execute(
        select(User, ApiKey.revoked)
        .join(ApiKey, ApiKey.user_id == User.id)
        .where(ApiKey.key_hash == hash_key(key))
    ).first()
    if row is None:
        raise AuthenticationError("the API key is not valid")
    if row[1]:
        raise AuthenticationError("the API key was revoked", fix="create a new key")
    return row[0]


def create_user(
    session: Session, *, name: str, email: str | None = None, is_admin: bool = False
) -> User:
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise ConflictError(f"a user named {name!r} exists", fix="choose another name")
    user = User(name=name, email=email, is_admin=is_admin)
    session.add(user)
    session.flush()
    return user


def create_key(session: Session, *, user_id: int, name: str = "default") -> tuple[ApiKey, str]:
    """A new key for the user; returns the row and the key (shown once, never stored)."""
    if session.get(User, user_id) is None:
        raise NotFoundError(f"no user {user_id}")
    key = generate_key()
    row = ApiKey(user_id=user_id, name=name, prefix=key[:8], key_hash=hash_key(key))
    session.add(row)
    session.flush()
    return row, key


def bootstrap_admin(session: Session, *, admin_key: str | None) -> str | None:
    """Make sure an admin can log in. With ``admin_key``: an admin user holding that key exists
    (created if needed). Without: on an empty user table, create ``admin`` with a fresh key and
    return it (the caller prints it). Returns the key when one was created."""
    if admin_key:
        if len(admin_key) < 16:
            raise InvalidInputError(
                "EARTHPLAT_ADMIN_KEY is shorter than 16 characters",
                fix="use a long random key, e.g. python -c 'import secrets;"
                "print(secrets.token_urlsafe(32))'",
            )
        if session.scalar(select(ApiKey.id).where(ApiKey.key_hash == hash_key(admin_key))):
            return None
        admin = session.scalar(select(User).where(User.name == "admin")) or create_user(
            session, name="admin", is_admin=True
        )
        admin.is_admin = True
        session.add(
            ApiKey(
                user_id=admin.id,
                name="bootstrap",
                prefix=admin_key[:8],
                key_hash=hash_key(admin_key),
            )
        )
        session.commit()
        return None
    if session.scalar(select(func.count(User.id))):
        return None
    admin = create_user(session, name="admin", is_admin=True)
    _, key = create_key(session, user_id=admin.id, name="bootstrap")
    session.commit()
    return key


def project_role(session: Session, *, user: User, project_id: int) -> str | None:
    if user.is_admin:
        return "admin"
    return session.scalar(
        select(ProjectMember.role).where(
            ProjectMember.project_id == project_id, ProjectMember.user_id == user.id
        )
    )


def require(session: Session, *, user: User, project_id: int, permission: str) -> str:
    """The user's role in the project, if it grants ``permission``; 404 for an unknown project,
    403 for a non-member or a role without the permission."""
    if session.get(Project, project_id) is None:
        raise NotFoundError(
            f"no project {project_id}", fix="list your projects at GET /api/v1/projects"
        )
    role = project_role(session, user=user, project_id=project_id)
    if role is None:
        raise PermissionDeniedError(f"you are not a member of project {project_id}")
    if permission not in PERMISSIONS[role]:
        allowed = [r for r in ROLES if permission in PERMISSIONS[r]]
        raise PermissionDeniedError(
            f"your role in project {project_id} is {role!r}; {permission!r} needs one of "
            f"{', '.join(allowed)}"
        )
    return role


def allowed(session: Session, *, user: User, project_id: int, permission: str) -> bool:
    """Whether the user's project role grants ``permission`` (no error)."""
    role = project_role(session, user=user, project_id=project_id)
    return role is not None and permission in PERMISSIONS[role]


def require_admin(user: User) -> None:
    if not user.is_admin:
        raise PermissionDeniedError("only platform admins may do this")
