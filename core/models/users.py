from __future__ import annotations

from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import String, event
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.orm.base import NEVER_SET, NO_VALUE

from core.infra.db import Base, utcnow

_hasher = PasswordHasher()  # argon2id with the library's recommended cost parameters


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(default=False)
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    password_changed_at: Mapped[datetime | None]
    # Part of every session and remember-me cookie; bumping it signs the user out everywhere.
    session_epoch: Mapped[int] = mapped_column(default=0, server_default="0")

    # The session-user protocol flask-login expects; kept here so core does not import the web layer.
    is_authenticated = True
    is_anonymous = False
    # A random value per sign-in, carried with the id and epoch; set by the web layer (never stored).
    session_nonce = ""

    def get_id(self) -> str:
        return f"{self.id}:{self.session_epoch or 0}:{self.session_nonce}"

    def revoke_sessions(self) -> None:
        """Every session and remember-me cookie issued so far stops working at its next request."""
        self.session_epoch = (self.session_epoch or 0) + 1

    def set_password(self, password: str) -> None:
        self.password_hash = _hasher.hash(password)
        self.password_changed_at = utcnow()
        self.revoke_sessions()

    def check_password(self, password: str) -> bool:
        try:
            return _hasher.verify(self.password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def __repr__(self) -> str:
        return f"<User {self.id} {self.username}>"


@event.listens_for(User.is_admin, "set", active_history=True)
@event.listens_for(User.is_active, "set", active_history=True)
def _privileges_changed(user: User, value, old, _initiator) -> None:
    """A role or an enabled flag that changes, by any path (admin page, CLI), ends the user's sessions:
    nothing keeps acting with the rights it had when it signed in."""
    if old not in (NO_VALUE, NEVER_SET) and value != old:
        user.revoke_sessions()
