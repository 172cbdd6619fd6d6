"""`/healthz`: the full report (processes, queues, errors) to admins and to local probes; a bare status
to anyone else, so an outsider learns whether the platform is up and nothing about how it is built."""

from ipaddress import ip_address

from flask import Blueprint, jsonify, request
from flask_login import current_user

from core.health import system_health
from webapp.extensions import csrf

bp = Blueprint("health", __name__)


def _is_local_probe() -> bool:
    """A request from this machine that did not come through a proxy (a proxy forwards outsiders too)."""
    if request.headers.get("X-Forwarded-For") or request.headers.get("Forwarded"):
        return False
    try:
        return ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


@bp.get("/healthz")
@csrf.exempt
def healthz():
    report = system_health()
    status = 200 if report["ok"] else 503
    if _is_local_probe() or getattr(current_user, "is_admin", False):
        return jsonify(report), status
    return jsonify({"ok": report["ok"]}), status
