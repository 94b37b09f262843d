"""Staff console (`/staff`): one blueprint, its pages in modules beside `base`.

`base` holds the blueprint and what every page shares (sessions, CSRF, roles, language, audit);
each page module imports from `base` and adds its routes. Importing the package registers them all.
"""

from hotline.web.staff import admin, auth, cases, content, reports  # noqa: F401  (routes)
from hotline.web.staff.base import (
    IP_LIMIT,
    LOCK_AFTER,
    PUBLIC_ENDPOINTS,
    bp,
    console_session,
    init_app,
    me,
    staff_required,
)

__all__ = ["IP_LIMIT", "LOCK_AFTER", "PUBLIC_ENDPOINTS", "bp", "console_session", "init_app", "me",
           "staff_required"]

from hotline.web.staff import record  # noqa: E402,F401  (routes: record a prompt in the browser)
