"""The Safe Migration Hotline: a free phone and SMS line for Cambodian migrant workers.

`create_app()` is the WSGI factory gunicorn serves: `gunicorn 'hotline:create_app()'`.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from hotline.settings import Settings, load_settings


def create_app(settings: Settings | None = None, *, check_schema: bool = True, **overrides: Any) -> Flask:
    """Build the app; refuses to start on an un-migrated database or an invalid IVR script.

    Ordinary mistakes (settings, script, database, folders) raise a StartupError whose message names
    the problem and the fix; under gunicorn that message is all that is printed.
    """
    from hotline.startup import startup_errors

    with startup_errors():
        return _build_app(settings or load_settings(), check_schema, overrides)


def _build_app(settings: Settings, check_schema: bool, overrides: dict[str, Any]) -> Flask:
    from werkzeug.middleware.proxy_fix import ProxyFix

    from hotline import db as dbmod
    from hotline.logs import setup_logging
    from hotline.resources import Resources

    setup_logging(settings.log_level)
    app = Flask(__name__, instance_path=str(settings.instance_path))
    app.config.update(
        SECRET_KEY=settings.secret_key,
        HOTLINE=settings,
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,  # Twilio bodies are small; a huge POST is not Twilio
        MAX_FORM_PARTS=1000,  # a 5,000-part multipart is 413 (Twilio sends a few dozen fields)
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_base_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=8 * 3600,
    )
    app.config.update(overrides)
    # X-Forwarded-* only from the proxies we were told of (TRUSTED_PROXIES): with none, anyone
    # reaching gunicorn directly could set their own address (per-IP login limit, audit log).
    n = settings.trusted_proxies
    if n > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]

    resources = Resources(settings)
    if check_schema:
        dbmod.check_schema(resources.db.engine)
    resources.init_app(app)

    from hotline.web import register_blueprints

    register_blueprints(app)
    if check_schema and app.config.get("ONCALL_WARNING", True):
        _warn_if_nobody_on_call(resources)
    return app


def _warn_if_nobody_on_call(resources: Any) -> None:
    """Once per process, at start: urgent-case alerts that would reach no one are worth a warning."""
    from hotline.services import oncall

    with resources.db.Session() as session:
        oncall.log_warning(session, resources.settings)
