"""Users and API keys (platform admins manage users; everyone manages their own keys)."""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlalchemy import select

from api import auth
from api.deps import CurrentUser, PathId, SessionDep
from api.schemas.users import KeyCreate, KeyCreated, KeyPublic, UserCreate, UserPublic
from labeling.models import ApiKey, User
from labeling.services.errors import NotFoundError, PermissionDeniedError

router = APIRouter(tags=["users"])


@router.get("/users/me", response_model=UserPublic)
def read_me(user: CurrentUser) -> User:
    return user


@router.get("/users", response_model=list[UserPublic])
def list_users(session: SessionDep, user: CurrentUser) -> list[User]:
    auth.require_admin(user)
    return list(session.scalars(select(User).order_by(User.id)))


@router.post("/users", response_model=UserPublic, status_code=status.HTTP_201_CREATED)
def create_user(body: UserCreate, session: SessionDep, user: CurrentUser) -> User:
    auth.require_admin(user)
    created = auth.create_user(session, name=body.name, email=body.email, is_admin=body.is_admin)
    session.commit()
    return created


def _own_or_admin(user: User, user_id: int) -> None:
    if user.id != user_id and not user.is_admin:
        raise PermissionDeniedError("you may only manage your own keys")


@router.post(
    "/users/{user_id}/keys", response_model=KeyCreated, status_code=status.HTTP_201_CREATED
)
def create_key(user_id: PathId, body: KeyCreate, session: SessionDep, user: CurrentUser) -> dict:
    """A new API key for the user; the key is in this response only."""
    _own_or_admin(user, user_id)
    row, key = auth.create_key(session, user_id=user_id, name=body.name)
    session.commit()
    return {**KeyPublic.model_validate(row).model_dump(), "key": key}


@router.get("/users/{user_id}/keys", response_model=list[KeyPublic])
def list_keys(user_id: PathId, session: SessionDep, user: CurrentUser) -> list[ApiKey]:
    _own_or_admin(user, user_id)
    return list(session.scalars(select(ApiKey).where(ApiKey.user_id == user_id)))


@router.delete("/keys/{key_id}", response_model=KeyPublic)
def revoke_key(key_id: PathId, session: SessionDep, user: CurrentUser) -> ApiKey:
    row = session.get(ApiKey, key_id)
    if row is None:
        raise NotFoundError(f"no key {key_id}")
    _own_or_admin(user, row.user_id)
    row.revoked = True
    session.commit()
    return row
