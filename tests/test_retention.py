"""Retention: `hotline purge` empties old message bodies and deletes old recordings (here and at
Twilio) while every row, and so every count, stays; an open case keeps its evidence."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from hotline.background import periodic
from hotline.cli import cli
from hotline.db import utcnow
from hotline.models import Case, CasePriority, CaseStatus, Direction, Message, MessageStatus, Recording
from hotline.resources import Resources
from hotline.services import recordings, retention
from hotline.settings import Settings, SettingsError, load_settings
from tests.test_faults_support import env_for

OLD = timedelta(days=100)
RECENT = timedelta(days=10)


def _case(s, ref: str, status: CaseStatus) -> Case:
    case = Case(ref=ref, source="sms", priority=CasePriority.URGENT, status=status)
    s.add(case)
    s.flush()
    return case


def _message(s, body: str, age: timedelta, case: Case | None = None) -> Message:
    msg = Message(direction=Direction.INBOUND, peer="+85512345678", body=body, status=MessageStatus.RECEIVED,
                  created_at=utcnow() - age, case_id=case.id if case else None)
    s.add(msg)
    return msg


def _recording(s, settings: Settings, sid: str, age: timedelta, case: Case | None = None) -> Recording:
    remote = f"{settings.twilio_api_base_url}/2010-04-01/Accounts/x/Recordings/{sid}"
    rec = Recording(recording_sid=sid, remote_url=remote, duration_s=12, created_at=utcnow() - age,
                    case_id=case.id if case else None)
    recordings.store(settings, rec, b"RIFF fake audio " + sid.encode())
    s.add(rec)
    return rec


@pytest.fixture
def arranged(rest_settings: Settings, fake_twilio) -> dict[str, int]:
    """Old and recent messages and recordings; some in an open case, some in a closed one."""
    res = Resources(rest_settings)
    with res.db.session() as s:
        open_case = _case(s, "HL-OPEN01", CaseStatus.IN_PROGRESS)
        closed_case = _case(s, "HL-DONE01", CaseStatus.CLOSED)
        ids = {
            "old": _message(s, "my boss took my passport", OLD),
            "old_closed": _message(s, "SOS", OLD, closed_case),
            "old_open": _message(s, "help me", OLD, open_case),
            "recent": _message(s, "INFO", RECENT),
            "rec_old": _recording(s, rest_settings, "RE" + "1" * 32, OLD),
            "rec_old_open": _recording(s, rest_settings, "RE" + "2" * 32, OLD, open_case),
            "rec_recent": _recording(s, rest_settings, "RE" + "3" * 32, RECENT),
        }
        s.flush()
        out = {k: v.id for k, v in ids.items()}
    res.close()
    return out


def _invoke(settings: Settings, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, ["purge", *args], env=env_for(settings))


def _state(settings: Settings) -> tuple[dict[int, str | None], dict[int, tuple[str, bool]], int, int]:
    res = Resources(settings)
    with res.db.Session() as s:
        bodies = {m.id: m.body for m in s.scalars(sa.select(Message))}
        recs = {r.id: (r.status, (settings.recordings_path / f"{r.recording_sid}.fernet").exists())
                for r in s.scalars(sa.select(Recording))}
        counts = (s.scalar(sa.select(sa.func.count(Message.id))), s.scalar(sa.select(sa.func.count(Recording.id))))
    res.close()
    return bodies, recs, counts[0] or 0, counts[1] or 0


def test_dry_run_counts_what_would_go_and_changes_nothing(rest_settings: Settings, arranged, fake_twilio) -> None:
    before = _state(rest_settings)
    result = _invoke(rest_settings, "--older-than", "90d", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "message bodies would purge: 2 (messages kept: 4)" in result.output
    assert "recordings would purge: 1 (recordings kept: 3)" in result.output
    assert _state(rest_settings) == before
    assert fake_twilio.deleted_recordings == []


def test_purge_empties_old_bodies_and_deletes_old_audio_keeping_every_row(rest_settings: Settings, arranged,
                                                                          fake_twilio) -> None:
    result = _invoke(rest_settings, "--older-than", "90d")
    assert result.exit_code == 0, result.output
    assert "message bodies purged: 2 (messages kept: 4)" in result.output
    assert "recordings purged: 1 (recordings kept: 3)" in result.output

    bodies, recs, n_messages, n_recordings = _state(rest_settings)
    assert (n_messages, n_recordings) == (4, 3)  # the counts survive
    assert bodies[arranged["old"]] is None and bodies[arranged["old_closed"]] is None
    assert bodies[arranged["old_open"]] == "help me"  # an open case keeps its evidence
    assert bodies[arranged["recent"]] == "INFO"
    assert recs[arranged["rec_old"]] == ("purged", False)
    assert recs[arranged["rec_old_open"]] == ("stored", True)
    assert recs[arranged["rec_recent"]] == ("stored", True)
    assert fake_twilio.deleted_recordings == ["RE" + "1" * 32]  # Twilio's copy goes too

    res = Resources(rest_settings)
    with res.db.Session() as s:
        purged = s.get(Message, arranged["old"])
        assert purged is not None and purged.body_purged_at is not None
        rec = s.get(Recording, arranged["rec_old"])
        assert rec is not None and rec.storage_path is None and rec.remote_deleted_at is not None
        assert rec.duration_s == 12  # what is reported about it stays
    res.close()


def test_purging_again_purges_nothing(rest_settings: Settings, arranged) -> None:
    assert _invoke(rest_settings, "--older-than", "90d").exit_code == 0
    result = _invoke(rest_settings, "--older-than", "90d")
    assert result.exit_code == 0, result.output
    assert "message bodies purged: 0" in result.output and "recordings purged: 0" in result.output


def test_closing_the_case_lets_its_old_evidence_be_purged(rest_settings: Settings, arranged) -> None:
    res = Resources(rest_settings)
    with res.db.session() as s:
        s.execute(sa.update(Case).values(status=CaseStatus.CLOSED))
    res.close()
    result = _invoke(rest_settings, "--older-than", "90d")
    assert "message bodies purged: 3" in result.output and "recordings purged: 2" in result.output


def test_a_failed_delete_at_twilio_still_purges_our_copy(rest_settings: Settings, arranged, fake_twilio) -> None:
    fake_twilio.stop()  # Twilio unreachable
    result = _invoke(rest_settings, "--older-than", "90d")
    assert result.exit_code == 0, result.output
    assert "recordings purged: 1" in result.output and "Twilio copies not deleted this time: 1" in result.output
    _, recs, _, _ = _state(rest_settings)
    assert recs[arranged["rec_old"]] == ("purged", False)


@pytest.mark.parametrize("age", ["soon", "0d", "-3d", "90x"])
def test_an_unreadable_age_is_refused(settings: Settings, age: str) -> None:
    result = _invoke(settings, "--older-than", age)
    assert result.exit_code == 2 and "--older-than" in result.output


def test_without_an_age_or_retention_days_the_command_says_what_to_give(settings: Settings) -> None:
    result = _invoke(settings)
    assert result.exit_code == 2 and "RETENTION_DAYS" in result.output


def test_retention_days_drives_the_default_age(rest_settings: Settings, arranged) -> None:
    result = CliRunner().invoke(cli, ["purge", "--dry-run"], env=env_for(rest_settings, RETENTION_DAYS="5"))
    assert result.exit_code == 0, result.output
    assert "message bodies would purge: 3" in result.output  # the 10-day-old one too


def test_worker_purges_periodically_when_retention_days_is_set(rest_settings: Settings, arranged,
                                                               monkeypatch) -> None:
    assert retention.purge_periodically in periodic.TASKS
    monkeypatch.setattr(retention, "_last_run", None)
    off = Resources(rest_settings)
    retention.purge_periodically(off)  # RETENTION_DAYS unset: nothing happens
    off.close()
    assert _state(rest_settings)[0][arranged["old"]] == "my boss took my passport"
    on = Resources(rest_settings.with_(retention_days=90))
    retention.purge_periodically(on)
    on.close()
    bodies, recs, _, _ = _state(rest_settings)
    assert bodies[arranged["old"]] is None and recs[arranged["rec_old"]] == ("purged", False)


def test_retention_days_setting_is_read_and_checked(tmp_path: Path) -> None:
    assert load_settings({"HOTLINE_INSTANCE": str(tmp_path)}).retention_days is None
    assert load_settings({"HOTLINE_INSTANCE": str(tmp_path), "RETENTION_DAYS": "30"}).retention_days == 30
    with pytest.raises(SettingsError, match="RETENTION_DAYS"):
        load_settings({"HOTLINE_INSTANCE": str(tmp_path), "RETENTION_DAYS": "0"})


def test_parse_age_units() -> None:
    assert retention.parse_age("90d") == timedelta(days=90)
    assert retention.parse_age("2w") == timedelta(weeks=2)
    assert retention.parse_age("36h") == timedelta(hours=36)
    assert retention.parse_age("45") == timedelta(days=45)
