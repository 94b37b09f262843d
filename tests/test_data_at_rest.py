"""Personal data at rest: message bodies and case notes are Fernet tokens in the database, under the
same keys as recordings (DATA_KEY / RECORDING_KEY, newest first); `hotline keys rotate` moves
everything to the newest key; production refuses a key file kept beside the data."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from cryptography.fernet import Fernet, InvalidToken
from test_console import login, make_case, make_staff, post
from test_faults_support import env_for

from hotline import crypto
from hotline.cli import cli
from hotline.models import CaseNote, Message, Recording
from hotline.resources import Resources
from hotline.services import recordings
from hotline.settings import SettingsError, load_settings

SECRET = "my boss took my passport"


def raw(db, table: str) -> list[str]:
    return [r[0] for r in db.execute(sa.text(f"SELECT body FROM {table} ORDER BY id"))]  # noqa: S608


def test_an_sms_body_is_a_token_in_the_database_and_text_to_the_app(twilio, db) -> None:
    resp = twilio.post("/twilio/sms", twilio.sms_params(SECRET))
    assert resp.status_code == 200
    stored = raw(db, "messages")
    assert stored and all(v.startswith(crypto.TOKEN_PREFIX) for v in stored)
    assert not any("passport" in v for v in stored)
    bodies = list(db.scalars(sa.select(Message.body).order_by(Message.id)))
    assert bodies[0] == SECRET  # and the reply beside it is encrypted too
    assert len(bodies) == len(stored)


def test_a_case_note_is_encrypted_and_shown_in_clear_to_staff(client, db) -> None:
    make_staff(db)
    case = make_case(db)
    login(client)
    post(client, f"/staff/cases/{case.id}/notes", {"body": "She is locked in at the factory dorm."})
    [stored] = raw(db, "case_notes")
    assert stored.startswith(crypto.TOKEN_PREFIX) and "factory" not in stored
    assert "She is locked in at the factory dorm." in client.get(f"/staff/cases/{case.id}").get_data(as_text=True)


def test_rows_written_before_encryption_are_read_and_rotate_encrypts_them(settings, db) -> None:
    case = make_case(db)
    db.execute(sa.text("INSERT INTO case_notes (case_id, body, created_at) VALUES (:c, :b, CURRENT_TIMESTAMP)"),
               {"c": case.id, "b": "an old plaintext note"})
    db.commit()
    assert list(db.scalars(sa.select(CaseNote.body))) == ["an old plaintext note"]  # tolerant read
    result = CliRunner().invoke(cli, ["keys", "rotate"], env=env_for(settings))
    assert result.exit_code == 0, result.output
    assert "case notes re-encrypted: 1" in result.output
    [stored] = raw(db, "case_notes")
    assert stored.startswith(crypto.TOKEN_PREFIX)
    db.expire_all()
    assert list(db.scalars(sa.select(CaseNote.body))) == ["an old plaintext note"]


def test_rotating_to_a_new_key_re_encrypts_bodies_notes_and_recordings(settings, twilio, client, db) -> None:
    old_key = settings.recording_key
    new_key = Fernet.generate_key().decode()
    twilio.post("/twilio/sms", twilio.sms_params(SECRET))
    make_staff(db)
    case = make_case(db)
    login(client)
    post(client, f"/staff/cases/{case.id}/notes", {"body": "note under the old key"})
    rec = Recording(recording_sid="RE" + "7" * 32, duration_s=3)
    recordings.store(settings, rec, b"RIFF old-key audio")
    db.add(rec)
    db.commit()

    both = env_for(settings, RECORDING_KEY=f"{new_key},{old_key}")  # the new key first
    result = CliRunner().invoke(cli, ["keys", "rotate"], env=both)
    assert result.exit_code == 0, result.output
    assert "recordings re-encrypted: 1" in result.output and "older keys can be removed" in result.output
    newest = Fernet(new_key.encode())
    for value in raw(db, "messages") + raw(db, "case_notes"):
        newest.decrypt(value.encode())  # raises unless made with the new key
        with pytest.raises(InvalidToken):
            Fernet(old_key.encode()).decrypt(value.encode())
    again = CliRunner().invoke(cli, ["keys", "rotate"], env=both)
    assert "message bodies re-encrypted: 0" in again.output and "recordings re-encrypted: 0" in again.output

    # The old key can go: everything reads with the new one alone.
    only_new = settings.with_(recording_key=new_key)
    res = Resources(only_new)
    try:
        with res.db.Session() as s:
            assert SECRET in s.scalars(sa.select(Message.body)).all()
            assert s.scalars(sa.select(CaseNote.body)).all() == ["note under the old key"]
            assert recordings.decrypt(only_new, s.get(Recording, rec.id)) == b"RIFF old-key audio"
    finally:
        res.close()
        crypto.install(settings.data_keys)


def test_keys_are_a_newest_first_list_and_data_key_is_the_newer_name(tmp_path: Path) -> None:
    a, b = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    base = {"HOTLINE_INSTANCE": str(tmp_path)}
    assert load_settings({**base, "RECORDING_KEY": f"{a}, {b}"}).data_keys == (a, b)
    assert load_settings({**base, "RECORDING_KEY": b, "DATA_KEY": a}).data_keys == (a,)
    with pytest.raises(SettingsError, match="key 2 of 2 is not a Fernet key"):
        load_settings({**base, "DATA_KEY": f"{a},not-a-key"})
    result = CliRunner().invoke(cli, ["keys", "generate"])
    assert result.exit_code == 0 and Fernet(result.output.strip().encode())


def _production(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"HOTLINE_ENV": "production", "HOTLINE_INSTANCE": str(tmp_path / "instance"),
            "DATABASE_URL": "postgresql://db/hotline", "REDIS_URL": "redis://redis:6379/0",
            "TWILIO_AUTH_TOKEN": "t" * 32, "TWILIO_ACCOUNT_SID": "AC" + "3" * 32,
            "PUBLIC_BASE_URL": "https://hotline.example", "SECRET_KEY": "s" * 32, **extra}


@pytest.mark.parametrize("where", ["instance", "instance/recordings", "recordings", "db"])
def test_production_refuses_a_key_file_beside_the_data(tmp_path: Path, where: str) -> None:
    folder = tmp_path / where
    folder.mkdir(parents=True)
    key_file = folder / "data.key"
    key_file.write_text(Fernet.generate_key().decode())
    extra = {"RECORDING_KEY_FILE": str(key_file)}
    if where == "recordings":
        extra["RECORDINGS_DIR"] = str(folder)
    if where == "db":
        extra["DATABASE_URL"] = f"sqlite:///{folder / 'hotline.db'}"
    with pytest.raises(SettingsError, match="beside the data it encrypts"):
        load_settings(_production(tmp_path, **extra))


def test_production_accepts_a_key_file_kept_elsewhere(tmp_path: Path) -> None:
    secrets_dir = tmp_path / "run-secrets"
    secrets_dir.mkdir()
    key = Fernet.generate_key().decode()
    (secrets_dir / "data_key").write_text(key)
    s = load_settings(_production(tmp_path, DATA_KEY_FILE=str(secrets_dir / "data_key")))
    assert s.data_keys == (key,)
