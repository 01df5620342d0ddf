"""The web application: every HTTP endpoint of the product lives under web/."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.templating import Jinja2Templates

from course.settings import Settings, get_settings
from web import health, inbox

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(title="Course mailer", docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.templates = TEMPLATES
    app.include_router(health.router)
    if inbox.outbox_folder(settings) is not None:
        # Only where mail is written to a folder (the demo): the inbox shows what would have been sent.
        app.include_router(inbox.router)
    return app
