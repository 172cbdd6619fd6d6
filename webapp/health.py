from flask import Blueprint, jsonify

from core.health import system_health
from webapp.extensions import csrf

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@csrf.exempt
def healthz():
    report = system_health()
    return jsonify(report), 200 if report["ok"] else 503
