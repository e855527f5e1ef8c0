"""Users and API keys."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class UserCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.@\-]+$")
    email: str | None = Field(default=None, max_length=320)
    is_admin: bool = False


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    email: str | None
    is_admin: bool
    created_at: datetime


class KeyCreate(BaseModel):
    name: str = Field(default="default", min_length=1, max_length=200)


class KeyPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: int
    name: str
    prefix: str
    revoked: bool
    created_at: datetime


class KeyCreated(KeyPublic):
    key: str
    """The key itself: shown once, only its hash is stored."""
