"""Security inventory: every /twilio route checks Twilio's signature, every /staff route needs a login,
and no whole phone number reaches the logs of the web or worker processes.

The route lists come from `app.url_map`: a route added later is covered without editing this file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from werkzeug.routing import IntegerConverter, Rule

from hotline import create_app
from hotline.background import outbox
from hotline.models import Call, Caller, CasePriority, Message
from hotline.resources import Resources, resources_of
from hotline.services import callers, intake
from hotline.settings import Settings
from tests.conftest import new_call_sid
from tests.test_faults_support import Web, start_worker

SKIP_METHODS = {"HEAD", "OPTIONS"}


def rules_under(app: Flask, prefix: str) -> list[Rule]:
    return sorted((r for r in app.url_map.iter_rules() if r.rule == prefix or r.rule.startswith(prefix + "/")),
                  key=lambda r: r.rule)


def concrete_path(rule: Rule) -> str:
    values: dict[str, Any] = {}
    for name in rule.arguments:
        values[name] = 1 if isinstance(rule._converters[name], IntegerConverter) else "CA" + "0" * 32
    built = rule.build(values, append_unknown=False)
    assert built is not None, rule.rule
    return str(built[1])


# -- /twilio: signatures ------------------------------------------------------------------------------

def test_every_twilio_route_is_wrapped_by_the_signature_check(app: Flask) -> None:
    rules = rules_under(app, "/twilio")
    assert len(rules) >= 4
    unsigned = [r.rule for r in rules if not getattr(app.view_functions[r.endpoint], "twilio_signed", False)]
    assert unsigned == [], f"/twilio routes without @twilio_signed: {unsigned}"


@pytest.mark.parametrize("signature", [None, "", "L/OH5YylLD5NRKLltdqwSvS0BnU="])
def test_every_twilio_route_refuses_unsigned_or_wrongly_signed_requests(app: Flask, client, db, signature) -> None:
    params = {"CallSid": new_call_sid(), "From": "+85512345678", "To": "+85523000000", "Digits": "9",
              "Body": "SOS", "MessageSid": "SM" + "1" * 32, "CallStatus": "completed", "MessageStatus": "delivered"}
    checked = []
    for rule in rules_under(app, "/twilio"):
        path = concrete_path(rule)
        for method in sorted((rule.methods or set()) - SKIP_METHODS):
            headers = {} if signature is None else {"X-Twilio-Signature": signature}
            resp = client.open(path, method=method, data=params if method == "POST" else None, headers=headers)
            assert resp.status_code == 403, f"{method} {path} answered {resp.status_code} without a valid signature"
            checked.append(f"{method} {path}")
    assert any(c.startswith("POST /twilio/voice") for c in checked) and "POST /twilio/sms" in checked
    # Nothing an unsigned request carried was stored.
    for model in (Caller, Call, Message):
        assert db.scalar(sa.select(sa.func.count()).select_from(model)) == 0, model.__name__


# -- /staff: login --------------------------------------------------------------------------------------

@pytest.fixture
def app_without_csrf(settings: Settings) -> Any:
    """CSRF off, so a logged-out POST meets the login check rather than a CSRF error first."""
    app = create_app(settings, TESTING=True, WTF_CSRF_ENABLED=False)
    yield app
    resources_of(app).close()


def test_every_staff_route_requires_login(app_without_csrf: Flask) -> None:
    app = app_without_csrf
    rules = rules_under(app, "/staff")
    assert rules, "the staff console (/staff) has no routes"
    login_manager = getattr(app, "login_manager", None)
    assert login_manager is not None and login_manager.login_view, "Flask-Login is not set up with a login view"
    with app.test_request_context():
        from flask import url_for

        login_url = url_for(login_manager.login_view)
    public = {login_manager.login_view}
    client = app.test_client()
    checked = []
    for rule in rules:
        if rule.endpoint in public or rule.endpoint == "static" or rule.endpoint.endswith(".static"):
            continue
        path = concrete_path(rule)
        for method in sorted((rule.methods or set()) - SKIP_METHODS):
            resp = client.open(path, method=method, data={"status": "closed", "body": "x"})
            where = f"{method} {path} (logged out)"
            assert resp.status_code in (301, 302, 303, 401), f"{where} answered {resp.status_code}"
            if resp.status_code != 401:
                assert resp.headers["Location"].split("?")[0].endswith(login_url), \
                    f"{where} redirected to {resp.headers['Location']}, not the login page"
            checked.append(where)
    assert len(checked) >= 3, checked


def test_staff_login_page_itself_is_reachable_logged_out(app_without_csrf: Flask) -> None:
    app = app_without_csrf
    with app.test_request_context():
        from flask import url_for

        login_url = url_for(app.login_manager.login_view)  # type: ignore[attr-defined]
    assert app.test_client().get(login_url).status_code == 200


# -- logs: no whole phone numbers ---------------------------------------------------------------------

CALLER = "+85512398765"
TEXTER = "+66812398764"
URGENT = "+85512398763"
BODY_NUMBER = "012 398 762"  # a number typed inside an SMS (national format)


def _digits(number: str) -> str:
    return re.sub(r"\D", "", number)


def test_no_whole_phone_number_reaches_web_or_worker_logs(rest_settings: Settings, fake_twilio,
                                                          tmp_path: Path) -> None:
    web = Web(rest_settings, tmp_path / "web.log")
    try:
        # A call: first step, then a key press on whatever the first menu gathers.
        sid = new_call_sid()
        params = {"AccountSid": rest_settings.twilio_account_sid, "CallSid": sid, "From": CALLER, "Caller": CALLER,
                  "To": "+85523000000", "Called": "+85523000000", "CallStatus": "in-progress", "Direction": "inbound"}
        status, twiml = web.post("/twilio/voice", params)
        assert status == 200 and "<Response" in twiml
        action = re.search(r'<Gather[^>]*action="([^"]+)"', twiml)
        if action:
            path = action.group(1).replace("&amp;", "&").removeprefix(web.url)
            assert web.post(path, {**params, "Digits": "1"})[0] == 200
        # An SMS with a number typed in its body, and an urgent SMS that opens a case.
        sms = {"AccountSid": rest_settings.twilio_account_sid, "From": TEXTER, "To": "+85523000000",
               "MessageSid": "SM" + "7" * 32, "Body": f"please call my sister {BODY_NUMBER}", "NumMedia": "0"}
        assert web.post("/twilio/sms", sms)[0] == 200
        assert web.post("/twilio/sms", {**sms, "From": URGENT, "MessageSid": "SM" + "8" * 32, "Body": "SOS"})[0] == 200
    finally:
        web.stop()
    # An urgent case opened directly too, so the worker's alert path runs whatever the SMS keywords are.
    res = Resources(rest_settings)
    outbox.install(res.db, res.redis)
    with res.db.session() as s:
        caller = callers.get_or_create(s, URGENT)
        intake.open_case(s, caller=caller, source="voice", source_sid=new_call_sid(), priority=CasePriority.URGENT)
    res.close()
    worker = start_worker(rest_settings, tmp_path / "worker.log", burst=True)
    assert worker.wait(timeout=90) == 0, worker.output()[-3000:]
    worker.stop()

    # The lawyer was texted, so the worker really handled numbers while it logged.
    lawyer = rest_settings.oncall_for("KH")[0]
    assert fake_twilio.sms_to(lawyer), f"no alert reached {lawyer}; worker log:\n{worker.output()[-3000:]}"
    logs = web.output() + worker.output()
    assert "POST /twilio/sms 200" in logs and "POST /twilio/voice 200" in logs  # we read the right output
    leaked = [n for n in (CALLER, TEXTER, URGENT, lawyer, BODY_NUMBER)
              if _digits(n) in re.sub(r"[ \-.]", "", logs)]
    assert leaked == [], f"whole numbers in logs: {leaked}"
    assert "please call my sister" not in logs  # nor message bodies
