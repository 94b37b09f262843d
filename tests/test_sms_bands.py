"""The three bands of an inbound text, through the signed SMS webhook and a real RQ worker:
strong danger pages a lawyer; possible danger asks the sender and waits for staff review (no page) until
a later urgent text upgrades it; a plain question gets the topic reply."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from hotline.models import Case, CaseStatus, CaseStatusChange, Message, OutboxJob
from hotline.services import consent
from tests.conftest import run_worker_burst
from tests.test_sms_webhook import KS, reply_of, rows, send

EVAL = yaml.safe_load((Path(__file__).resolve().parent / "data" / "urgent_eval.yaml").read_text(encoding="utf-8"))
ONCALL_TH = "+66812345001"  # the first TH number of tests.conftest.ONCALL
CALLER = "+66891234567"


def items(lang: str, label: str, n: int) -> list[dict]:
    return [i for i in EVAL["items"] if i["lang"] == lang and i["label"] == label][:n]


@pytest.mark.parametrize("lang", ["km", "km_latn", "th", "en", "mixed"])
def test_strong_danger_opens_an_urgent_case_with_its_category(twilio, db, lang: str) -> None:
    chosen = items(lang, "urgent", 8)
    for n, item in enumerate(chosen):
        resp, sid = send(twilio, item["text"], from_=f"+66812{n:06d}")
        (case,) = rows(db, Case, Case.source_sid == sid)
        assert (case.priority, case.category, case.status) == ("urgent", item["category"], "new"), item["id"]
        language = KS.reply_language(item["text"], None)
        expected = [KS.render("urgent", language, "TH")]
        if consent.about_someone_else(item["text"]):
            # A family member's report: the first consent question follows the urgent reply (#12).
            expected.append(consent.first_question(language))
        assert case.reported_by_other == (len(expected) == 2), item["id"]
        assert [m.text for m in ET.fromstring(resp.data).findall("Message")] == expected, item["id"]
    jobs = rows(db, OutboxJob, OutboxJob.kind == "case.notify")
    assert len(jobs) == len(chosen) and {j.queue for j in jobs} == {"urgent"}


def test_possible_danger_asks_and_opens_a_review_case_that_pages_nobody(twilio, db, rest_settings,
                                                                        fake_twilio) -> None:
    resp, sid = send(twilio, "police came to our camp", from_=CALLER)
    text = reply_of(resp)
    assert text == KS.render("possible", "km", "TH")  # no stored language: Khmer, the default
    assert "SOS" in text and "191" in text
    (case,) = rows(db, Case)
    assert (case.priority, case.category, case.status, case.source_sid) == ("normal", "detention", "new", sid)
    inbound, outbound = rows(db, Message, Message.peer == CALLER)
    assert inbound.case_id == outbound.case_id == case.id
    run_worker_burst(rest_settings)
    assert fake_twilio.messages == []  # nobody is paged for a possible sign


@pytest.mark.parametrize("text", ["ប៉ូលិសមកកន្លែងធ្វើការយើង", "ตำรวจมาที่แคมป์", "i am scared"])
def test_possible_danger_in_each_script_gets_the_asking_reply_in_that_script(twilio, db, text: str) -> None:
    resp, _ = send(twilio, text, from_=CALLER)
    assert reply_of(resp) == KS.render("possible", KS.reply_language(text, None), "TH")
    assert [c.priority for c in rows(db, Case)] == ["normal"]


def test_a_later_sos_upgrades_the_review_case_at_once_and_pages_once(twilio, db, rest_settings,
                                                                     fake_twilio) -> None:
    send(twilio, "police came to our camp", from_=CALLER)
    run_worker_burst(rest_settings)
    resp, sid = send(twilio, "SOS", from_=CALLER)
    assert reply_of(resp) == KS.render("urgent", "km", "TH")
    (case,) = rows(db, Case)  # the same case, not a second one
    assert (case.priority, case.category, case.status) == ("urgent", "detention", "new")
    (sos,) = rows(db, Message, Message.sid == sid)
    assert sos.case_id == case.id
    history = rows(db, CaseStatusChange, CaseStatusChange.case_id == case.id)
    assert [h.reason for h in history][-1].startswith("priority urgent")
    run_worker_burst(rest_settings)
    run_worker_burst(rest_settings)  # a second pass sends nothing more
    [alert] = fake_twilio.sms_to(ONCALL_TH)
    assert case.ref in alert["Body"] and "(detention, TH)" in alert["Body"] and CALLER not in alert["Body"]


def test_a_stronger_later_text_also_gives_the_review_case_its_category(twilio, db) -> None:
    send(twilio, "i am scared", from_=CALLER)
    send(twilio, "they locked us inside the factory", from_=CALLER)
    (case,) = rows(db, Case)
    assert (case.priority, case.category) == ("urgent", "locked_in")


def test_once_staff_took_the_review_case_an_sos_opens_a_new_urgent_case(twilio, db) -> None:
    send(twilio, "i have a problem with my boss", from_=CALLER)
    db.execute(sa.update(Case).values(status=CaseStatus.CLAIMED))
    db.commit()
    send(twilio, "SOS", from_=CALLER)
    assert [(c.priority, c.status) for c in rows(db, Case)] == [("normal", "claimed"), ("urgent", "new")]


def test_over_the_rate_limit_an_sos_still_upgrades_the_review_case(twilio, db) -> None:
    send(twilio, "broker wants more money", from_=CALLER)
    for _ in range(KS.rate_limit[0]):
        send(twilio, "hello", from_=CALLER)
    resp, _ = send(twilio, "SOS", from_=CALLER)
    assert reply_of(resp) is None  # over the limit: not answered, but acted on
    (case,) = rows(db, Case)
    assert case.priority == "urgent"
    send(twilio, "i am scared", from_=CALLER)  # a possible sign over the limit opens nothing
    assert len(rows(db, Case)) == 1


@pytest.mark.parametrize("text,topic", [
    ("what is the police number", 7), ("លេខប៉ូលិស", 7), ("เบอร์ตำรวจ", 7), ("ใบรับรองตำรวจ", 1),
    ("do I need a police clearance for Korea?", 1), ("where to take passport photo", 2),
    ("what is the emergency number in Thailand?", 7),
])
def test_plain_questions_get_the_topic_reply_and_open_nothing(twilio, db, text: str, topic: int) -> None:
    resp, _ = send(twilio, text, from_=CALLER)
    assert reply_of(resp) == KS.render(f"topic_{topic}", KS.reply_language(text, None), "TH")
    assert rows(db, Case) == [] and rows(db, OutboxJob) == []


@pytest.mark.parametrize("text", ["how long does a passport take", "I want to leave my job, can I?",
                                  "what is best for me", "please don't block me", "ធ្វើលិខិតឆ្លងដែនប៉ុន្មានថ្ងៃ",
                                  "เปลี่ยนนายจ้างได้ไหม"])
def test_ordinary_questions_open_no_case(twilio, db, text: str) -> None:
    resp, _ = send(twilio, text, from_=CALLER)
    assert reply_of(resp) is not None
    assert rows(db, Case) == [] and rows(db, OutboxJob) == []


def test_an_mms_with_no_body_gets_a_calm_answer_and_opens_nothing(twilio, db) -> None:
    params = twilio.sms_params("", from_=CALLER)
    params.update(NumMedia="1", MediaUrl0="https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1",
                  MediaContentType0="image/jpeg")
    resp = twilio.post("/twilio/sms", params)
    assert resp.status_code == 200
    assert reply_of(resp) == KS.render("unknown", "km", "TH")
    assert rows(db, Case) == []
