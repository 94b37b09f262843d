"""The Safe Migration Hotline: a free phone and SMS line for Cambodian migrant workers.

`create_app()` is the WSGI factory gunicorn serves: `gunicorn 'hotline:create_app()'`.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from hotline.settings import Settings, load_settings


def create_app(settings: Settings | None = None, *, check_schema: bool = True, **overrides: Any) -> Flask:
    """Build the app; refuses to start on an un-migrated database or an invalid IVR script."""
    from werkzeug.middleware.proxy_fix import ProxyFix

    from hotline import db as dbmod
    from hotline.logs import setup_logging
    from hotline.resources import Resources

    settings = settings or load_settings()
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
    return app
