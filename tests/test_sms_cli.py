"""`hotline scripts check-sms`, and the SMS webhook with Redis down."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import sqlalchemy as sa
import yaml
from click.testing import CliRunner

from hotline import create_app
from hotline.cli import cli
from hotline.models import Case, Message, OutboxJob
from hotline.resources import resources_of
from tests.conftest import SignedTwilio
from tests.test_sms_webhook import KS, SCRIPTS, reply_of


def test_check_sms_lists_every_reply_with_its_parts() -> None:
    result = CliRunner().invoke(cli, ["scripts", "check-sms"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 3 * 16 * 3 + 1
    assert any(line.startswith("km  urgent     TH     ucs2") and line.endswith("2 part(s)") for line in lines)
    assert lines[-1] == "ok: 3 languages, 144 replies within 2 parts; 7 numbers still need a phone check"


def test_check_sms_names_the_file_and_field_of_a_mistake(tmp_path: Path) -> None:
    target = tmp_path / "sms"
    shutil.copytree(SCRIPTS, target)
    doc = yaml.safe_load((target / "th.yaml").read_text(encoding="utf-8"))
    del doc["replies"]["lang_menu"]
    (target / "th.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    result = CliRunner().invoke(cli, ["scripts", "check-sms", "--dir", str(target)])
    assert result.exit_code == 1
    assert "th.yaml: replies: missing lang_menu" in result.output


def test_urgent_text_is_stored_and_answered_with_redis_down(settings) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(settings.with_(redis_url=f"redis://127.0.0.1:{port}/0"), TESTING=True)
    try:
        twilio = SignedTwilio(app.test_client(), settings.twilio_auth_token, settings.public_base_url)
        resp = twilio.post("/twilio/sms", twilio.sms_params("my boss took my passport", from_="+66812345678"))
        assert resp.status_code == 200
        assert reply_of(resp) == KS.render("urgent", "km", "TH")
        with resources_of(app).db.Session() as db:
            assert db.scalar(sa.select(Case.category)) == "documents"
            assert db.scalar(sa.select(OutboxJob.status)) == "pending"  # the sweeper enqueues it later
            assert db.scalar(sa.select(sa.func.count(Message.id))) == 2
    finally:
        resources_of(app).close()
