"""An htmx fragment's URL opened directly (a bookmark, a shared link, a middle-click, a reload after a
pushed URL) answers a whole page: the fragment inside the layout, with a link to its area's page.
htmx requests, other methods, errors, streams and full pages pass through untouched."""

from __future__ import annotations

from flask import Flask, Response, render_template, url_for
from htmx_flask import request  # flask's request, plus .htmx (the HX-Request header)
from markupsafe import Markup
from werkzeug.routing import BuildError


def init_app(app: Flask) -> None:
    app.after_request(_inside_the_layout)


def _inside_the_layout(response: Response) -> Response:
    if (
        request.method != "GET"
        or request.htmx
        or response.status_code != 200
        or response.mimetype != "text/html"
        or response.is_streamed
    ):
        return response
    body = response.get_data(as_text=True)
    if body.lstrip()[:9].lower() in ("<!doctype", "<html"):
        return response
    area = request.blueprint or ""
    page = render_template(
        "fragment_page.html", fragment=Markup(body), title=area.replace("_", " ").capitalize(), area_url=_area_url(area)
    )
    response.set_data(page)
    return response


def _area_url(area: str) -> str | None:
    try:
        return url_for(f"{area}.index")
    except BuildError:
        return None
