"""The compliance dashboard: server-rendered pages under /ui, on top of the API's own domain code.

Jinja2 templates (autoescaped) and a static folder; the only script is static/live.js, which
refreshes a running request's progress. No front-end build, nothing loaded from another site.
"""

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from service.web import pages_admin, pages_requests
from service.web.routing import HERE


def mount_dashboard(app: FastAPI) -> None:
    app.include_router(pages_requests.router)
    app.include_router(pages_admin.router)
    app.mount("/ui/static", StaticFiles(directory=HERE / "static"), name="ui-static")
