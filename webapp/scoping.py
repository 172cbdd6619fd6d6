"""Every query is scoped to the logged-in user; someone else's object is simply not found (404)."""

from __future__ import annotations

from functools import wraps

from flask import abort
from flask_login import current_user, login_required
from sqlalchemy.orm import Session


def owned_or_404(session: Session, model, object_id: int):
    obj = session.get(model, object_id)
    if obj is None or obj.user_id != current_user.id:
        abort(404)
    return obj


def admin_required(view):
    @wraps(view)
    @login_required
    def wrapper(*args, **kwargs):
        if not current_user.is_admin:
            abort(404)  # admin pages do not exist for traders
        return view(*args, **kwargs)

    return wrapper
