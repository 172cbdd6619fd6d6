"""`python -m webapp`: gunicorn (threads) serving the app, logging as one JSON line per event."""

from __future__ import annotations

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from core.infra.config import get_settings
from core.infra.liveness import start_liveness
from core.infra.logs import setup_logging
from webapp import create_app


class WebServer(BaseApplication):
    def __init__(self, options: dict):
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        return create_app()


class AccessLogger(Logger):
    """gunicorn's logger without access lines for TradingView alerts: each request to a webhook URL is
    stored with its outcome (the trader's webhook log), and a burst of them would flood the log."""

    def access(self, resp, req, environ, request_time) -> None:
        if not environ.get("PATH_INFO", "").startswith("/webhooks/tv/"):
            super().access(resp, req, environ, request_time)


def _post_worker_init(_worker) -> None:
    setup_logging("web")
    start_liveness("web")


def main() -> None:
    settings = get_settings()
    setup_logging("web", settings.file.log_level)
    web = settings.file.web
    WebServer(
        {
            "bind": f"{web.host}:{web.port}",
            "workers": web.workers,
            "threads": web.threads,
            "worker_class": "gthread",
            "timeout": 120,  # SSE streams are long-lived
            "accesslog": None,
            "logger_class": AccessLogger,
            "post_worker_init": _post_worker_init,
            "logconfig_dict": {"version": 1, "disable_existing_loggers": False, "root": {"level": "INFO"}},
        }
    ).run()


if __name__ == "__main__":
    main()
