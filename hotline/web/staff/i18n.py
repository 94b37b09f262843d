"""Interface strings of the staff console: English keys here, every other language in a gettext catalog.

`EN` maps each key (what the code and templates pass to `t()`) to its English text, which is the
msgid; the Khmer lives in hotline/translations/km/LC_MESSAGES/messages.po, which translators edit
(Poedit, Weblate, any PO editor) and which is compiled at start-up, without network
(`init_babel`). `t(key, lang)` is a thin shim over gettext for the dict-style callers; new code
may call Flask-Babel's `_()`/`gettext` with the English text directly (templates too).

NEEDS NATIVE-SPEAKER REVIEW: every Khmer entry is a first draft by a non-native writer and carries
the PO flag `needs-review`; KM_REVIEWED stays False until a Khmer-speaking legal-aid worker has
read them in the console and removed the flags. The console is for staff, never shown to callers.

Adding a string: add the key and English to EN (or REPORT_EN), and its Khmer draft to KM_PENDING;
then `python -m hotline.catalog` moves the drafts into the catalog (flagged for review).
Until that is run, `t()` already shows KM_PENDING's draft.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from babel.support import NullTranslations, Translations

from hotline import catalog

LANGUAGES = {"en": "English", "km": "ខ្មែរ (Khmer)"}

EN: dict[str, str] = {
    "console": "Hotline staff console",
    "skip_to_content": "Skip to content",
    "queue": "Case queue",
    "callbacks": "Callbacks",
    "oncall": "On-call roster",
    "accounts": "Staff accounts",
    "audit": "Audit log",
    "login": "Log in",
    "logout": "Log out",
    "email": "Email",
    "password": "Password",
    "bad_login": "Wrong email or password.",
    "too_many_attempts": "Too many attempts. Try again in 15 minutes.",
    "session_expired": "Your session ended. Please log in again.",
    "form_expired": "This form has expired",
    "form_expired_help": "Go back, reload the page and try again.",
    "forbidden": "Not allowed",
    "forbidden_help": "Your role cannot do this.",
    "not_found": "Not found",
    "back_to_queue": "Back to the queue",
    "role_admin": "admin",
    "role_lawyer": "lawyer",
    "role_operator": "operator",
    "queue_views": "Which cases",
    "view_open": "Open",
    "view_mine": "Mine",
    "view_all": "All, with closed",
    "queue_caption": "Urgent cases first, then the longest waiting.",
    "queue_empty": "No cases here.",
    "ref": "Reference",
    "priority": "Priority",
    "priority_urgent": "URGENT",
    "priority_normal": "normal",
    "category": "Category",
    "category_trafficking": "Trafficking",
    "category_documents": "Documents taken",
    "category_unpaid_wages": "Unpaid wages",
    "category_violence": "Violence",
    "category_detention": "Arrested / detained",
    "category_locked_in": "Locked in / cannot leave",
    "category_missing": "Missing person",
    "category_other": "Other",
    "country": "Country",
    "status": "Status",
    "status_new": "new",
    "status_claimed": "claimed",
    "status_in_progress": "in progress",
    "status_referred": "referred",
    "status_closed": "closed",
    "waiting": "Waiting",
    "claimed_by": "Claimed by",
    "overdue": "OVERDUE",
    "minutes": "{n} min",
    "hours_minutes": "{h} h {m} min",
    "days": "{n} days",
    "case": "Case",
    "opened": "Opened",
    "source_voice": "call",
    "source_sms": "text",
    "source_staff": "staff",
    "source_ivr": "call",
    "source_missed_call": "missed call",
    "source_telegram": "Telegram",
    "source_messenger": "Messenger",
    "source_line": "LINE",
    "source_smsgate": "text (Thai SIM)",
    "language": "Language",
    "caller": "Caller",
    "opted_out_sms": "opted out of SMS (texted STOP): no texts are sent; calls are still allowed",
    "reported_by_other": "Asked by someone else",
    "subject_phone": "Person needing help",
    "consent_contact": "Agreed to be contacted",
    "consent_share": "Agreed to share details",
    "last_error": "Alert or job problem",
    "yes": "yes",
    "no": "no",
    "unknown": "not known",
    "reveal": "Show full numbers",
    "reveal_hint": "(recorded in the audit log)",
    "actions": "Actions",
    "claim": "Claim this case",
    "assign_to": "Assign to",
    "assign": "Assign",
    "change_status": "Status",
    "reason": "Reason",
    "save_status": "Save status",
    "notes": "Notes",
    "no_notes": "No notes yet.",
    "add_note": "New note",
    "save_note": "Save note",
    "status_history": "Status history",
    "when": "When",
    "from": "From",
    "to": "To",
    "who": "Who",
    "system": "system",
    "caller_history": "Caller's history",
    "calls": "Calls",
    "direction_inbound": "in",
    "direction_outbound": "out",
    "no_path": "No steps recorded.",
    "none": "None.",
    "texts": "Texts",
    "body_purged": "Text removed after the retention period.",
    "recordings": "Recordings",
    "play_recording": "Play recording",
    "recording_pending": "Not yet stored",
    "recording_failed": "Could not be stored",
    "recording_purged": "Removed after the retention period",
    "recording_stored": "Stored",
    "earlier_cases": "Other cases from this number",
    "claimed_ok": "You have claimed this case.",
    "already_claimed": "Someone else claimed this case first: {by}.",
    "assigned_ok": "Case assigned.",
    "status_ok": "Status saved.",
    "note_ok": "Note saved.",
    "empty_note": "The note is empty.",
    "note_too_long": "The note is too long (10,000 characters at most).",
    "bad_status": "Unknown status.",
    "same_status": "The case already has that status.",
    "no_such_staff": "Choose an active staff member.",
    "case_closed": "The case is closed.",
    "callbacks_caption": "Open callback requests, the one due soonest first.",
    "no_callbacks": "No open callback requests.",
    "phone": "Phone",
    "asked": "Asked",
    "due": "Due",
    "preferred_time": "Best time",
    "when_now": "now",
    "when_evening": "evening",
    "when_weekend": "weekend",
    "attempts": "Attempts",
    "for_someone_else": "for someone else",
    "call_now": "Call now",
    "call_queued": "Your phone rings now: press 1 to take the call. Then their phone rings, from the hotline's "
                   "number, and they are asked first whether it is a good time to talk.",
    "callback_reason": "Why you call (audited)",
    "reason_required": "Say why you call before the scheduled time.",
    "no_staff_phone": "Your account has no phone number, so the hotline cannot ring you first. Ask an admin to "
                      "add it. Until then the request is tried by itself at its time: {when}.",
    "no_staff_phone_nobody_on_call": "Your account has no phone number, so the hotline cannot ring you first, and "
                                     "nobody is on call for {country}: nothing will be tried until someone is.",
    "outside_calling_hours": "Outside calling hours in the person's time zone. The earliest possible call is {when}.",
    "too_soon": "The last attempt rang them less than {minutes} minutes ago. The earliest possible call is {when}.",
    "not_due": "Not yet: {when} ({why}).",
    "nobody_on_call": "Nobody on call for {country}: nothing is tried by itself until someone is on the roster.",
    "call_under_way": "A call is under way.",
    "max_attempts": "All {n} attempts are used.",
    "no_number": "There is no number to call back for this case (withheld or not a phone number).",
    "not_scheduled_yet": "being scheduled",
    "call_back_case": "Call back safely",
    "call_back_case_help": "Your phone rings first (press 1); then the person, from the hotline's number, is asked "
                           "whether it is a good time to talk.",
    "outcome_staff_missed": "Staff phone did not take it",
    "outcome_bridge_failed": "Could not connect",
    "record_outcome": "What happened",
    "outcome_reached": "Reached",
    "outcome_no_answer": "No answer",
    "outcome_busy": "Busy",
    "outcome_unsafe": "Not safe to talk",
    "outcome_wrong_number": "Wrong number",
    "outcome_machine": "Voicemail",
    "outcome_failed": "Call failed",
    "outcome_ok": "Outcome saved.",
    "bad_outcome": "Unknown outcome.",
    "callback_closed": "This callback request is already closed.",
    "name": "Name",
    "role": "Role",
    "last_login": "Last login",
    "active": "Active",
    "activate": "Reactivate",
    "deactivate": "Deactivate",
    "new_account": "New account",
    "phone_optional": "Phone (optional; rings first when they call back)",
    "password_rule": "Password (at least 10 characters)",
    "create_account": "Create account",
    "account_created": "Account created for {email}.",
    "bad_phone": "That is not a valid phone number.",
    "bad_country": "Use a two-letter country code such as TH or KH.",
    "oncall_help": "Urgent-case alerts for a country go to its numbers in position order.",
    "oncall_empty": "The roster is empty: alerts go to the numbers in HOTLINE_ONCALL:",
    "oncall_none": "Nobody is on call: the roster is empty and HOTLINE_ONCALL is not set, so urgent-case "
                   "alerts reach no one. Add a number below.",
    "oncall_nobody": "Nobody is on call: urgent-case alerts reach no one.",
    "oncall_nobody_for": "Nobody is on call for {countries}: urgent-case alerts from there reach no one.",
    "oncall_fix": "Add a number to the on-call roster",
    "oncall_alerted": "Alerting {count} urgent case(s) that were waiting for someone on call.",
    "oncall_add": "Add a number",
    "country_code": "Country (TH, KH, ...)",
    "position": "Position",
    "remove": "Remove",
    "add": "Add",
    "object_type": "Object type",
    "object_id": "Object id",
    "staff_id": "Staff id",
    "filter": "Filter",
    "action": "Action",
    "object": "Object",
    "ip": "Address",
    "detail": "Detail",
    # accounts that can be secured (issue 13)
    "remember_device": "Remember this device (stay logged in when the browser closes, up to 8 hours)",
    "change_password": "Change password",
    "must_change_password": ("Choose your own password before you continue: the one you logged in with was set "
                             "by someone else."),
    "old_password": "Current password",
    "new_password": "New password (at least 10 characters)",
    "confirm_password": "New password again",
    "passwords_differ": "The two new passwords are not the same.",
    "wrong_old_password": "The current password is wrong.",
    "same_password": "Choose a password different from the current one.",
    "password_changed": "Password changed. Your other sessions have ended.",
    "logout_everywhere": "Log out everywhere",
    "logout_everywhere_help": "Ends every session of yours, on every device, this one included.",
    "reset_password": "Reset password",
    "password_reset_title": "Password reset",
    "password_reset_done": ("Temporary password for {email}, shown once: {password} — give it to them privately; "
                            "they must change it when they log in. Their sessions have ended."),
    "case_not_allowed": "Your role cannot do this to this case.",
    "two_factor": "Two-factor login",
    "two_factor_help": ("Scan this code with an authenticator app (or type the key below), then enter the 6-digit "
                        "code it shows."),
    "totp_secret_once": "Key (shown only now):",
    "totp_enter_code": "6-digit code from your authenticator app",
    "totp_enable": "Turn on two-factor login",
    "totp_enabled": "Two-factor login is on: each login now asks for a code.",
    "totp_on": "Two-factor login is on. To turn it off, enter your password.",
    "totp_disable": "Turn off two-factor login",
    "totp_bad_code": "That code is not right. Check the time on your phone and try the newest code.",
    # Chat channels (#18): staff reply on the contact's own channel.
    "channel": "Channel",
    "reply_on_channel": "Reply on {channel}",
    "reply_send": "Send reply",
    "reply_help": ("Sent to this person on {channel}, where they wrote to us. Do not write anything that "
                   "would be unsafe if someone else reads their phone."),
    "reply_queued": "Reply queued; its status shows in the texts above.",
    "reply_empty": "Write a reply first.",
    "reply_too_long": "The reply is too long (at most 1000 characters).",
    "reply_no_channel": "This person did not write on a chat channel that is on: no reply can be sent here.",
    "reply_window": "{channel} allows no reply this long after the person's last message.",
    "reply_opted_out": "This person asked for no more messages (STOP).",
}

# --- reports (/staff/reports, `hotline report`) --------------------------------------------------

REPORT_EN: dict[str, str] = {
    "reports": "Reports",
    "role_reports": "reports",
    "province": "Province",
    "district": "District",
    "province_none": "not known",
    "province_saved": "Province saved.",
    "save": "Save",
    "bad_province": "Choose a province from the list (and a district in that province).",
    "rep_title": "Hotline report",
    "rep_from": "From",
    "rep_to": "To",
    "rep_by": "Group by",
    "rep_week": "week",
    "rep_month": "month",
    "rep_show": "Show",
    "rep_download_csv": "Download CSV",
    "rep_download_xlsx": "Download XLSX",
    "rep_bad_range": "Give a start and end date (YYYY-MM-DD), the end not before the start, at most three years.",
    "rep_suppression": "Counts from 1 to {k1} are shown as <{k}. A cell marked * is hidden as well, so that "
                       "a small count cannot be worked out from the totals.",
    "rep_total": "Total",
    "rep_t_contacts": "Contacts by channel",
    "rep_t_callers": "Callers (distinct numbers)",
    "rep_t_calls_language": "Calls by language",
    "rep_t_calls_country": "Calls by country of the caller",
    "rep_t_messages": "Messages heard",
    "rep_t_funnel": "Where callers drop off",
    "rep_t_hangups": "Hang-ups by menu node",
    "rep_t_sms_keyword": "Texts by keyword and language",
    "rep_t_callbacks": "Callback requests by outcome",
    "rep_t_cases_category": "Cases by category",
    "rep_t_cases_priority": "Cases by priority",
    "rep_t_cases_status": "Cases by status (now)",
    "rep_t_cases_country": "Cases by country",
    "rep_t_cases_province": "Cases by home province",
    "rep_t_callers_province": "Callers by province (their answer in the voice menu)",
    "rep_caller_province": "Province",
    "rep_t_urgent": "Urgent cases and alerts",
    "rep_t_durations": "How fast",
    "rep_channel": "Channel",
    "rep_callers": "Callers",
    "rep_language": "Language",
    "rep_country": "Country",
    "rep_message": "Message",
    "rep_heard": "Plays started",
    "rep_completed": "Plays heard to the end",
    "rep_completion": "Completion",
    "rep_stage": "Stage",
    "rep_calls": "Calls",
    "rep_node": "Menu node",
    "rep_keyword": "Keyword",
    "rep_callback": "Outcome",
    "rep_case_category": "Category",
    "rep_case_priority": "Priority",
    "rep_case_status": "Status",
    "rep_case_country": "Country",
    "rep_case_province": "Province",
    "rep_urgent": "Urgent",
    "rep_duration": "Time",
    "rep_n": "Cases",
    "rep_median": "Median",
    "rep_p90": "90th percentile",
    "rep_duration_note": "Time to claim: from the case being opened to a staff member claiming it. Time to first "
                         "contact: to the first callback that reached the person, or the urgent call being "
                         "answered by a lawyer. Time to reach: from a callback request to the call that reached it.",
    "rep_channel_voice": "Calls to the menu",
    "rep_channel_missed_call": "Missed calls",
    "rep_channel_sms": "Texts (SMS)",
    "rep_first_time": "First-time",
    "rep_returning": "Returning",
    "rep_lang_km": "Khmer",
    "rep_lang_th": "Thai",
    "rep_lang_en": "English",
    "rep_lang_unknown": "not chosen",
    "rep_unknown": "not known",
    "rep_none": "no keyword",
    "rep_country_KH": "Cambodia",
    "rep_country_TH": "Thailand",
    "rep_country_other": "other",
    "rep_country_unknown": "not known",
    "rep_province_unknown": "not known",
    "rep_stage_called": "Called",
    "rep_stage_language": "Chose a language",
    "rep_stage_message": "Started a message",
    "rep_stage_completed": "Heard a message to the end",
    "rep_cb_reached": "reached",
    "rep_cb_given_up": "given up (attempts used)",
    "rep_cb_open": "still open",
    "rep_cb_cancelled": "cancelled",
    "rep_cb_closed_other": "closed otherwise",
    "rep_priority_urgent": "urgent",
    "rep_priority_normal": "normal",
    "rep_urgent_opened": "urgent cases opened",
    "rep_urgent_escalated": "escalated",
    "rep_urgent_overdue": "overdue",
    "rep_alerts_failed": "alerts that failed",
    "rep_time_to_claim": "Urgent: time to claim",
    "rep_time_to_contact": "Urgent: time to first contact",
    "rep_callback_time_to_reach": "Callbacks: time to reach",
}

EN.update(REPORT_EN)


# --- content studio (/staff/content); Khmer drafts need the same review as above ------------------------
CONTENT_EN: dict[str, str] = {
    "role_content": "content",
    "content": "Content",
    "content_matrix": "Prompts and replies",
    "content_menu_tree": "Menu tree",
    "content_versions": "Versions and publishing",
    "content_try_draft": "Try the draft in the simulator",
    "content_published_now": "Callers hear version {number}.",
    "content_starter_now": "Callers hear the starter set (nothing published yet).",
    "content_draft_status": "Draft: {changes} change(s) not yet published.",
    "content_problem_count": "{count} problem(s) to fix before publishing",
    "content_language": "Language",
    "content_all_languages": "All languages",
    "content_show": "Show",
    "content_kind": "Kind",
    "content_all_kinds": "Voice prompts and SMS replies",
    "content_kind_text": "Voice prompt",
    "content_kind_reply": "SMS reply",
    "content_filter": "Filter",
    "content_filter_all": "everything",
    "content_filter_needs_recording": "still needs a recording",
    "content_filter_placeholder": "placeholder audio only",
    "content_filter_unreviewed": "not reviewed yet",
    "content_filter_problems": "has a problem",
    "content_rows_shown": "{shown} of {total} shown.",
    "content_csv_export": "Download all texts (CSV, for translators)",
    "content_csv_import": "Upload translated texts (CSV)",
    "content_upload": "Upload",
    "content_matrix_caption": "Every prompt and reply in every language: words, recording, review, last change",
    "content_item": "Prompt / reply",
    "content_lang_km": "Khmer",
    "content_lang_th": "Thai",
    "content_lang_en": "English",
    "content_audio_recorded": "recorded",
    "content_audio_placeholder": "placeholder",
    "content_audio_missing": "missing",
    "content_recording": "Recording",
    "content_words": "Words",
    "content_review_draft": "draft",
    "content_review_needs_review": "needs review",
    "content_review_reviewed": "reviewed",
    "content_reviewed_by": "reviewed by {name}",
    "content_unreviewed_heard": "Callers would get this unreviewed.",
    "content_edit": "Edit",
    "content_record": "Record",
    "content_mark_reviewed": "Mark words reviewed",
    "content_mark_recording_reviewed": "Mark recording reviewed",
    "content_sms_parts": "{parts} SMS part(s)",
    "content_sms_parts_live": "{parts} SMS part(s), {encoding}",
    "content_empty": "This cannot be empty: write the text, or keep the old one.",
    "content_conflict": ("{by} changed this while you were editing. Your text is kept in the box; their text is "
                         "below. Merge them and save again."),
    "content_conflict_help": "Copy what you need from it into the box above, then save.",
    "content_theirs": "What is saved now",
    "content_saved": "Saved in the draft. Callers hear it only after publishing.",
    "content_save_draft": "Save in the draft",
    "content_back": "Back",
    "content_draft_gone": "The draft was published while you were editing. Your text is kept: save it again.",
    "content_unknown_item": "That text does not exist.",
    "content_no_recording": "There is no recording to review.",
    "content_invalid": "The draft cannot be published: {count} problem(s). Each is shown next to its field.",
    "content_published": "Version {number} is published. Every line serves it within seconds.",
    "content_rolled_back": "Version {number} is back, published as version {new}.",
    "content_nothing_to_publish": "There is no draft to publish.",
    "content_draft_changed": "The draft changed since you opened this page. Look at the changes, then publish again.",
    "content_no_version": "There is no such version.",
    "content_csv_bad": "Choose a CSV file (at most 2 MB).",
    "content_csv_columns": "The CSV needs the columns kind, key, lang and text (download one to see).",
    "content_csv_done": ("{changed} text(s) changed, {unchanged} unchanged, {refused} row(s) refused, "
                         "{conflicts} changed meanwhile by someone else (not applied)."),
    "content_keys_syntax": "Line {line}: write a key, =, and where it leads, e.g. 1 = main",
    "content_nodes_caption": "The voice menu: every node, its keys and where they lead",
    "content_node": "Menu node",
    "content_node_type": "Type",
    "content_keys": "Keys",
    "content_keys_help": "Keys, one per line: key = where it leads (a node), e.g. 1 = msg_before_you_go",
    "content_timeout": "Seconds to wait for a key",
    "content_no_input": "When no key is pressed",
    "content_wrong_key": "When a wrong key is pressed",
    "content_retries": "Tries before moving on",
    "content_then": "Then go to (a node)",
    "content_draft": "The draft",
    "content_draft_older": ("The draft was started from version {based}; version {number} has been published since. "
                            "Publishing the draft replaces it."),
    "content_publish_note": "What changed (for the log)",
    "content_publish": "Publish the draft",
    "content_versions_caption": "Every published version; any of them can be brought back",
    "content_version": "Version",
    "content_published_at": "Published",
    "content_note": "Note",
    "content_live": "what callers hear",
    "content_rollback_to": "Bring back version {number}",
    "content_mark_needs_review": "Needs review again",
    "content_mark_draft": "Back to draft (not ready)",
    "content_draft_first": "Everything below is in the draft until the first publish.",
    "content_live_unreviewed": "Callers now get {count} text(s) or recording(s) no reviewer has checked.",
}
EN.update(CONTENT_EN)

RECORD_EN: dict[str, str] = {
    "rec_title": "Record prompt {n}: {prompt} ({language})",
    "rec_back": "Back to the content matrix",
    "rec_say": "What to say",
    "rec_no_text": "This prompt has no words in this language yet: write them first.",
    "rec_now": "What plays now",
    "rec_now_take": "The draft's recording ({seconds} s, {review}).",
    "rec_now_placeholder": "A placeholder: no one has recorded this prompt in this language yet.",
    "rec_now_nothing": "Nothing: this prompt has no audio in this language.",
    "rec_browser": "Record in the browser",
    "rec_level": "Microphone level",
    "rec_start": "Start recording",
    "rec_stop": "Stop",
    "rec_listen": "Listen to your take, then keep it or record again.",
    "rec_keep": "Keep this take",
    "rec_redo": "Record again",
    "rec_no_mic": "This browser cannot record here: upload a file instead.",
    "rec_upload": "Upload a file",
    "rec_file": "Recording (any audio format: m4a, mp3, wav, ogg ..., at most {max})",
    "rec_upload_button": "Upload",
    "rec_choose_file": "Choose a recording first.",
    "rec_refused": "Not kept: {reason}",
    "rec_too_large": "Not kept: the file is larger than {mb} MB; a prompt needs much less (send it as m4a or mp3).",
    "rec_kept": "Kept: {seconds} s, now in the draft and marked for review (loudness {lufs} LUFS before, "
                "{target} after).",
    "rec_how": "The recording is cut to the speech, brought to telephone loudness, and checked: silence, "
               "distortion (too loud) and takes over {max} are refused with the reason.",
    "rec_phone": "Record by phone",
    "rec_phone_help": "Call the content line from the phone number on your account and type your PIN; this "
                      "prompt is number {n}.",
    "rec_pin": "Phone PIN (6 to 8 digits)",
    "rec_pin_confirm": "PIN again",
    "rec_pin_password": "Your console password",
    "rec_pin_set": "Set PIN",
    "rec_pin_saved": "Your phone PIN is set.",
    "rec_pin_differ": "The two PINs differ.",
    "rec_pin_no_phone": "Your account has no phone number: ask an admin to add it first.",
    "rec_pin_has": "You have a PIN. Setting a new one replaces it.",
    "rec_mic_blocked": "The microphone is blocked: allow it in the browser, or upload a file.",
    "rec_mic_none": "No microphone could be opened: upload a file instead.",
    "rec_take_loud": "That take touched full volume: listen, and record again further from the microphone if it "
                     "sounds harsh.",
    "rec_take_quiet": "That take is very quiet: check the microphone, or move closer.",
    "rec_saving": "Checking and saving ...",
    "rec_script": "The script in {language}, numbered as the content line says them",
    "rec_script_link": "Print the numbered script",
    "rec_number": "No.",
    "rec_prompt": "Prompt",
    "rec_words": "Words",
    "rec_state": "Recording",
    "rec_recorded": "recorded",
    "rec_to_record": "to record",
    "rec_phone_takes": "Recorded by phone",
    "rec_take_recorded": "not kept",
    "rec_take_kept": "kept, being checked",
    "rec_take_stored": "in the draft",
    "rec_take_refused": "refused",
    "rec_take_failed": "not received",
}
EN.update(RECORD_EN)

# Khmer drafts of new keys, not yet moved into the catalog (dict-style strings from other branches
# land here at merge; `python -m hotline.catalog` then moves them and empties this).
KM_PENDING: dict[str, str] = {
}


@functools.cache
def translations(lang: str) -> NullTranslations:
    """The compiled catalog of `lang` (built in memory from its .po: no .mo file or network needed)."""
    if lang not in catalog.LANGS:
        return NullTranslations()
    import io

    return Translations(io.BytesIO(catalog.compiled(lang)), domain=catalog.DOMAIN)


@functools.cache
def _contexts(lang: str) -> frozenset[str]:
    """Keys whose English is shared with a key translated differently: looked up with msgctxt=key."""
    return frozenset(m.context for m in catalog.read_catalog(lang) if m.context)


def gettext_for(key: str, lang: str) -> str | None:
    """The translation of `key` in `lang` through gettext, None when the catalog has none."""
    msgid = EN.get(key)
    if msgid is None:
        return None
    tr = translations(lang)
    in_context = key in _contexts(lang)
    text = str(tr.pgettext(key, msgid) if in_context else tr.gettext(msgid))
    # A translation may equal the English ("Telegram", "LINE"): the catalog has it, so it is not missing.
    entry = f"{key}\x04{msgid}" if in_context else msgid
    if text != msgid or lang == "en" or entry in getattr(tr, "_catalog", {}):
        return text
    return KM_PENDING.get(key) if lang == "km" else None


def t(key: str, lang: str = "en", **values: Any) -> str:
    """The string for `key` in `lang`, falling back to English, then to the key itself."""
    text = (gettext_for(key, lang) if lang != "en" else None) or EN.get(key) or key
    return text.format(**values) if values else text


def _catalog_view(lang: str) -> dict[str, str]:
    """Key -> text for one language, as the dicts were: only keys the catalog (or KM_PENDING) translates."""
    return {k: text for k in EN if (text := gettext_for(k, lang) or "")}


KM: dict[str, str] = _catalog_view("km")
KM_REVIEWED = not any(catalog.REVIEW_FLAG in m.flags for m in catalog.read_catalog("km") if m.id)
STRINGS = {"en": EN, "km": KM}


def report_label(lang: str) -> Callable[[str], str]:
    """Label function for hotline.services.reports: "rep_status_new" falls back to "status_new"."""

    def label(key: str) -> str:
        for candidate in (key, key.removeprefix("rep_")):
            if candidate in EN:
                return t(candidate, lang)
        return key.removeprefix("rep_")

    return label


# --- content studio (/staff/content); Khmer drafts need the same review as above ------------------------
