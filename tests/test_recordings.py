"""Voicemails are copied from Twilio by a real worker, encrypted at rest, and decrypt round-trips."""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa

from hotline.background.outbox import add_job
from hotline.models import OutboxJob, OutboxStatus, Recording
from hotline.services.recordings import RecordingUnavailable, decrypt
from tests.conftest import ACCOUNT_SID, run_worker_burst
from tests.test_legal_aid import retry_due_jobs

AUDIO = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)) * 8


def new_recording(res, url: str, sid: str = "RE" + "a" * 32) -> int:
    with res.db.Session() as s:
        rec = Recording(recording_sid=sid, remote_url=url, duration_s=12)
        s.add(rec)
        s.flush()
        add_job(s, "recording.fetch", {"recording_id": rec.id}, queue="low")
        s.commit()
        return rec.id


def twilio_url(fake, sid: str = "RE" + "a" * 32) -> str:
    return f"{fake.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{sid}"


def the_recording(db, rec_id: int) -> Recording:
    db.expire_all()
    rec = db.get(Recording, rec_id)
    assert rec is not None
    return rec


def test_recording_is_fetched_encrypted_and_decrypts_to_the_original(res, db, rest_settings, fake_twilio) -> None:
    fake_twilio.recordings["RE" + "a" * 32] = AUDIO
    rec_id = new_recording(res, twilio_url(fake_twilio))
    run_worker_burst(rest_settings)

    rec = the_recording(db, rec_id)
    assert rec.status == "stored" and rec.fetched_at is not None
    assert rec.sha256 == hashlib.sha256(AUDIO).hexdigest()
    stored = (rest_settings.recordings_path / rec.storage_path).read_bytes()
    assert AUDIO not in stored and b"RIFF" not in stored  # encrypted, not the plaintext
    assert (rest_settings.recordings_path / rec.storage_path).stat().st_mode & 0o077 == 0
    assert decrypt(rest_settings, rec) == AUDIO
    assert ("GET", f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{'RE' + 'a' * 32}.wav") in fake_twilio.requests
    assert fake_twilio.deleted_recordings == []  # RECORDINGS_DELETE_REMOTE is off by default


def test_twilio_copy_is_deleted_when_the_setting_says_so(res, db, rest_settings, fake_twilio) -> None:
    fake_twilio.recordings["RE" + "a" * 32] = AUDIO
    rec_id = new_recording(res, twilio_url(fake_twilio))
    run_worker_burst(rest_settings.with_(recordings_delete_remote=True))
    rec = the_recording(db, rec_id)
    assert fake_twilio.deleted_recordings == ["RE" + "a" * 32]
    assert rec.status == "stored" and rec.remote_deleted_at is not None


def test_recording_not_ready_yet_is_fetched_on_retry(res, db, rest_settings, fake_twilio) -> None:
    rec_id = new_recording(res, twilio_url(fake_twilio))
    run_worker_burst(rest_settings)  # Twilio answers 404 for a moment after the recording ends
    assert db.scalar(sa.select(OutboxJob.status)) == OutboxStatus.PENDING
    fake_twilio.recordings["RE" + "a" * 32] = AUDIO
    assert retry_due_jobs(res) == 1
    run_worker_burst(rest_settings)
    assert decrypt(rest_settings, the_recording(db, rec_id)) == AUDIO


def test_credentials_never_go_to_a_host_that_is_not_twilio(res, db, rest_settings, fake_twilio) -> None:
    rec_id = new_recording(res, "https://attacker.example.net/2010-04-01/Recordings/RE1")
    run_worker_burst(rest_settings)
    job = db.scalar(sa.select(OutboxJob))
    assert job.status == OutboxStatus.FAILED and "not Twilio's or ours" in job.last_error
    assert the_recording(db, rec_id).status == "pending"


def test_a_wrong_key_or_an_altered_file_is_refused(res, db, rest_settings, fake_twilio) -> None:
    from cryptography.fernet import Fernet

    fake_twilio.recordings["RE" + "a" * 32] = AUDIO
    rec_id = new_recording(res, twilio_url(fake_twilio))
    run_worker_burst(rest_settings)
    rec = the_recording(db, rec_id)
    with pytest.raises(RecordingUnavailable, match="cannot decrypt"):
        decrypt(rest_settings.with_(recording_key=Fernet.generate_key().decode()), rec)
    path = rest_settings.recordings_path / rec.storage_path
    data = bytearray(path.read_bytes())
    data[40] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(RecordingUnavailable):
        decrypt(rest_settings, rec)


def test_embedded_default_fetches_the_simulators_recording_the_same_way(live_server, db) -> None:
    """No Twilio credentials: the simulator serves recordings at RecordingUrl with basic auth, like Twilio."""
    from hotline.simclient.recordings import RecordingStore

    settings = live_server.settings
    store = RecordingStore(settings.instance_path / "simulator" / "recordings",
                           settings.public_base_url + "/simulator/recordings")
    made = store.add_sample()
    with live_server.app.extensions["hotline"].db.Session() as s:
        rec = Recording(recording_sid=made.sid, remote_url=made.url)
        s.add(rec)
        s.flush()
        add_job(s, "recording.fetch", {"recording_id": rec.id})
        s.commit()
        rec_id = rec.id
    run_worker_burst(settings)
    rec = the_recording(db, rec_id)
    assert rec.status == "stored" and rec.remote_deleted_at is None
    assert decrypt(settings, rec) == store.path(made.sid).read_bytes()
