"""Typed settings, read once from the environment and checked strictly.

Two modes:
- embedded (the default): SQLite and a redis-server that `hotline` starts itself, both kept in the
  instance folder; secrets are generated on first start and kept there too.
- production (`HOTLINE_ENV=production`): every secret and service URL must be given; a missing one
  stops start-up with a message naming it.

Any `NAME` may instead be given as `NAME_FILE` (a path whose contents are the value), so secrets can
come from Docker or Kubernetes secret files.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import time
from pathlib import Path
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from hotline.phones import known_country

SIMULATOR_MODES = ("off", "staff", "open")


class SettingsError(Exception):
    """Raised with every problem found, one per line, so an operator fixes them in one go."""


@dataclass(frozen=True)
class OnCall:
    """One on-call legal-aid number and the country whose cases it takes."""

    country: str  # ISO 3166 alpha-2, e.g. "TH"
    phone: str  # E.164


@dataclass(frozen=True)
class Settings:
    env: str = "embedded"
    instance_path: Path = Path("instance")
    database_url: str = ""
    redis_url: str | None = None  # None: start the embedded redis-server
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_rest_enabled: bool = False  # True only when real credentials were given
    twilio_api_base_url: str | None = None
    public_base_url: str = "http://127.0.0.1:5000"
    audio_base_url: str | None = None  # None: served by the app under /audio
    secret_key: str = ""
    # Fernet keys, comma-separated, newest first (DATA_KEY, or RECORDING_KEY): recordings, message
    # bodies and case notes are encrypted at rest with them (hotline.crypto).
    recording_key: str = ""
    hotline_number: str = "+85523000000"  # caller ID and SMS sender for what we send
    missed_call_numbers: frozenset[str] = frozenset()
    # The content line (staff record prompts by phone): its own Twilio number, never the hotline's.
    content_line_number: str | None = None
    oncall: tuple[OnCall, ...] = ()
    timezone: str = "Asia/Phnom_Penh"
    simulator: str = "open"  # off | staff (admins, reserved numbers) | open (embedded, no REST only)
    trusted_proxies: int = 0  # X-Forwarded-* hops trusted (ProxyFix); 0: the socket's address is the client
    log_level: str = "INFO"
    # Legal aid: an urgent case unclaimed this long is marked overdue and the next on-call number texted.
    escalate_after_minutes: int = 15
    # Calls we place (callbacks) only between these local times, in the CALLEE's time zone.
    calling_hours: str = "08:00-20:00"
    callback_max_attempts: int = 3
    callback_retry_minutes: int = 60  # the wait between two attempts at the same number
    # Delete Twilio's copy of a voicemail once it is stored (encrypted) in recordings_dir.
    recordings_delete_remote: bool = False
    recordings_dir: Path | None = None  # None: <instance>/recordings
    content_dir: Path | None = None  # the content studio's recordings (by sha256); None: <instance>/content
    content_check_seconds: int = 2  # how often a process asks which content version is published
    # Recordings, bodies, numbers and closed cases' notes older than this many days are purged; None: never.
    retention_days: int | None = 365
    # Reports show counts from 1 to report_min_cell - 1 as "<N" (small-cell suppression).
    report_min_cell: int = 5
    # The worker's loop: periodic duties, outbox sweep and heartbeat every this many seconds.
    worker_tick_seconds: int = 15
    # Chat and gateway channels that are on: channel name -> its settings by their environment names
    # (`CHANNEL_SETTINGS`; the `*_API_BASE_URL` ones filled with the platform's own host).
    channels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def simulator_mode(self) -> str:
        """`open` never stands where real texts and calls can go out (REST credentials, production)."""
        if self.simulator == "open" and (self.production or self.twilio_rest_enabled):
            return "staff"
        return self.simulator if self.simulator in SIMULATOR_MODES else "off"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def embedded_redis(self) -> bool:
        return self.redis_url is None

    @property
    def data_keys(self) -> tuple[str, ...]:
        from hotline.crypto import parse_keys

        return parse_keys(self.recording_key)

    @property
    def recordings_path(self) -> Path:
        return self.recordings_dir or (self.instance_path / "recordings")

    @property
    def content_path(self) -> Path:
        return self.content_dir or (self.instance_path / "content")

    @property
    def calling_window(self) -> tuple[time, time]:
        """(start, end) local times of CALLING_HOURS, e.g. (08:00, 20:00)."""
        return parse_calling_hours(self.calling_hours)

    def oncall_for(self, country: str) -> list[str]:
        """On-call numbers for a caller's country; all numbers when none is set for it."""
        numbers = [o.phone for o in self.oncall if o.country == country]
        return numbers or [o.phone for o in self.oncall]

    def channel(self, name: str) -> Mapping[str, str] | None:
        """The settings of a chat channel that is on, or None (off: its route answers 404)."""
        return self.channels.get(name)

    def with_(self, **changes: object) -> "Settings":
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ChannelSpec:
    """What turns a chat channel on: all of `required` (setting any one of them asks for the rest);
    `defaults` are optional URLs, each defaulting to the platform's own host."""

    required: tuple[str, ...]
    defaults: Mapping[str, str] = field(default_factory=dict)


# The names are the (#18): deploy files keep them across versions.
CHANNEL_SETTINGS: Mapping[str, ChannelSpec] = {
    "messenger": ChannelSpec(("MESSENGER_APP_SECRET", "MESSENGER_PAGE_TOKEN", "MESSENGER_VERIFY_TOKEN"),
                             {"MESSENGER_API_BASE_URL": "https://graph.facebook.com"}),
    "line": ChannelSpec(("LINE_CHANNEL_SECRET", "LINE_CHANNEL_ACCESS_TOKEN"),
                        {"LINE_API_BASE_URL": "https://api.line.me",
                         "LINE_DATA_API_BASE_URL": "https://api-data.line.me"}),
    "telegram": ChannelSpec(("TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET"),
                            {"TELEGRAM_API_BASE_URL": "https://api.telegram.org"}),
    "smsgate": ChannelSpec(("SMSGATE_URL", "SMSGATE_USERNAME", "SMSGATE_PASSWORD", "SMSGATE_SIGNING_KEY")),
}
_CHANNEL_URLS = frozenset({"SMSGATE_URL"})


def parse_channels(env: Mapping[str, str]) -> tuple[dict[str, dict[str, str]], list[str]]:
    """The channels that are on and their settings, and every problem (a missing companion setting
    is named with the one that was given). A channel with none of its settings is off."""
    channels: dict[str, dict[str, str]] = {}
    errors: list[str] = []
    for name, spec in CHANNEL_SETTINGS.items():
        given = {key: value for key in spec.required if (value := _read(env, key)) is not None}
        if not given:
            continue
        missing = [key for key in spec.required if key not in given]
        if missing:
            one = len(missing) == 1
            errors.append(f"{', '.join(missing)} {'is' if one else 'are'} required when {next(iter(given))} "
                          f"is set (the {name} channel); set {'it' if one else 'them'} too, or unset "
                          f"{', '.join(given)} to turn the channel off")
            continue
        values = dict(given)
        for key, default in spec.defaults.items():
            values[key] = (_read(env, key) or default).rstrip("/")
        for key in (*spec.defaults, *(k for k in spec.required if k in _CHANNEL_URLS)):
            values[key] = values[key].rstrip("/")
            _check_url(key, values[key], ("http", "https"), errors)
        channels[name] = values
    return channels, errors


def _read(env: Mapping[str, str], name: str) -> str | None:
    if name in env and env[name] != "":
        return env[name]
    path = env.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a text file"
            raise SettingsError(f"Settings are not valid:\n  - {name}_FILE={path!r} cannot be read ({reason})") \
                from None
    return None


def parse_oncall(raw: str) -> tuple[OnCall, ...]:
    """Parse `+66812345678,+85512345678` or `TH:+66812345678,KH:+85512345678`.

    Without a prefix, a number serves the country it belongs to. Raises ValueError naming every bad
    entry, one per line.
    """
    entries, problems = _oncall_entries(raw)
    if problems:
        raise ValueError("\n".join(problems))
    return entries


def _oncall_entries(raw: str) -> tuple[tuple[OnCall, ...], list[str]]:
    out: list[OnCall] = []
    problems: list[str] = []
    for entry in (p.strip() for p in raw.split(",")):
        if not entry:
            continue
        country, number = None, entry
        if ":" in entry:
            country, number = (part.strip() for part in entry.split(":", 1))
            country = country.upper()
            if not known_country(country):
                problems.append(f"{entry!r}: {country!r} is not a country code (use two letters, such as KH or TH)")
                continue
        e164 = _e164(number)
        if e164 is None:
            problems.append(f"{entry!r} is not a phone number: write it with + and the country code, "
                            "like +66812345678")
            continue
        region = phonenumbers.region_code_for_number(phonenumbers.parse(e164, None)) or "ZZ"
        out.append(OnCall(country or region, e164))
    return tuple(out), problems


def _e164(number: str) -> str | None:
    """`+66 81 234 5678` -> `+66812345678`; None unless it is a valid number written with +."""
    if not number.startswith("+"):
        return None
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def parse_calling_hours(raw: str) -> tuple[time, time]:
    """Parse `08:00-20:00` into two times; the start must come before the end (no overnight window)."""
    try:
        start_s, end_s = (part.strip() for part in raw.split("-", 1))
        start, end = time.fromisoformat(start_s), time.fromisoformat(end_s)
    except ValueError:
        raise ValueError(f"{raw!r} must look like 08:00-20:00") from None
    if start >= end:
        raise ValueError(f"{raw!r}: the start must be before the end")
    return start, end


def _int(env: Mapping[str, str], name: str, default: int, low: int, errors: list[str]) -> int:
    raw = _read(env, name)
    if raw is None:
        return default
    if not raw.strip().isdigit() or int(raw) < low:
        errors.append(f"{name}={raw!r} must be a whole number of at least {low}")
        return default
    return int(raw)


def _bool(env: Mapping[str, str], name: str, default: bool, errors: list[str]) -> bool:
    raw = _read(env, name)
    if raw is None:
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    errors.append(f"{name}={raw!r} must be true or false")
    return default


def _instance_secrets(instance: Path) -> dict[str, str]:
    """Secrets for the embedded mode, generated once and kept in the instance folder."""
    path = instance / "secrets.json"
    if path.exists():
        return dict(json.loads(path.read_text()))
    from cryptography.fernet import Fernet

    values = {
        "SECRET_KEY": secrets.token_urlsafe(32),
        "TWILIO_AUTH_TOKEN": secrets.token_hex(16),
        "TWILIO_ACCOUNT_SID": "AC" + secrets.token_hex(16),
        "RECORDING_KEY": Fernet.generate_key().decode(),
    }
    instance.mkdir(parents=True, exist_ok=True)
    # Two processes starting on a fresh folder (gunicorn workers, web and worker) must agree on one
    # set: each writes its own private file, and link() publishes it only if none exists yet, so the
    # loser reads the winner's instead of replacing it (a replace left them with different tokens).
    fd, tmp = tempfile.mkstemp(dir=instance, prefix=".secrets-", suffix=".tmp")  # created 0600
    try:
        with os.fdopen(fd, "w") as out:
            out.write(json.dumps(values, indent=2))
        try:
            os.link(tmp, path)
        except FileExistsError:
            return dict(json.loads(path.read_text()))
    finally:
        os.unlink(tmp)
    return values


def _check_url(name: str, value: str, schemes: tuple[str, ...], errors: list[str]) -> None:
    parsed = urlparse(value)
    if parsed.scheme not in schemes or not (parsed.netloc or parsed.path):
        errors.append(f"{name}={_hide_password(value)!r} must be a URL starting with one of "
                      f"{', '.join(s + '://' for s in schemes)}")


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from the environment; raise SettingsError listing every problem."""
    env = os.environ if env is None else env
    errors: list[str] = []
    mode = (_read(env, "HOTLINE_ENV") or "embedded").lower()
    if mode not in ("embedded", "production"):
        errors.append(f"HOTLINE_ENV={mode!r} must be 'embedded' or 'production'")
    production = mode == "production"
    instance = Path(_read(env, "HOTLINE_INSTANCE") or "instance").resolve()

    generated: dict[str, str] = {}
    if not production:
        try:
            generated = _instance_secrets(instance)
        except OSError as exc:
            raise SettingsError(
                f"Settings are not valid:\n  - HOTLINE_INSTANCE={str(instance)!r}: cannot use this folder "
                f"({exc.strerror or exc}). Point HOTLINE_INSTANCE at a folder this user can write "
                "(it holds the database, Redis and the generated secrets).") from None

    def need(name: str) -> str:
        value = _read(env, name)
        if value is None and not production and name in generated:
            return generated[name]
        if value is None:
            errors.append(f"{name} is required when HOTLINE_ENV=production")
            return ""
        return value

    database_url = _read(env, "DATABASE_URL")
    if database_url is None:
        if production:
            errors.append("DATABASE_URL is required when HOTLINE_ENV=production (a postgresql:// URL)")
        database_url = f"sqlite:///{instance / 'hotline.db'}"
    database_url = normalise_database_url(database_url)
    if urlparse(database_url).scheme not in ("sqlite", "postgresql+psycopg"):
        errors.append(f"DATABASE_URL={_hide_password(database_url)!r} must start with postgresql:// "
                      "(or postgres://), e.g. postgresql://user:password@host:5432/hotline, "
                      "or be sqlite:///path/to/file.db")

    redis_url = _read(env, "REDIS_URL")
    if redis_url is None and production:
        errors.append("REDIS_URL is required when HOTLINE_ENV=production (a redis:// URL)")
    if redis_url is not None:
        _check_url("REDIS_URL", redis_url, ("redis", "rediss", "unix"), errors)

    account_sid = _read(env, "TWILIO_ACCOUNT_SID")
    auth_token = _read(env, "TWILIO_AUTH_TOKEN")
    rest_enabled = bool(account_sid and auth_token)
    if production and not auth_token:
        errors.append("TWILIO_AUTH_TOKEN is required when HOTLINE_ENV=production: without it no webhook can be trusted")
    if account_sid and not account_sid.startswith("AC"):
        errors.append(f"TWILIO_ACCOUNT_SID={account_sid!r} must start with AC")
    api_base = _read(env, "TWILIO_API_BASE_URL")
    if api_base:
        _check_url("TWILIO_API_BASE_URL", api_base, ("http", "https"), errors)

    public = (_read(env, "PUBLIC_BASE_URL") or ("" if production else "http://127.0.0.1:5000")).rstrip("/")
    if production and not public:
        errors.append("PUBLIC_BASE_URL is required when HOTLINE_ENV=production (the https:// URL Twilio calls)")
    elif public:
        _check_url("PUBLIC_BASE_URL", public, ("http", "https"), errors)
    audio_base = _read(env, "AUDIO_BASE_URL")
    if audio_base:
        _check_url("AUDIO_BASE_URL", audio_base, ("http", "https"), errors)

    oncall, oncall_problems = _oncall_entries(_read(env, "HOTLINE_ONCALL") or "")
    errors.extend(f"HOTLINE_ONCALL: {problem}" for problem in oncall_problems)

    hotline_number = _read(env, "HOTLINE_NUMBER") or "+85523000000"
    missed = frozenset(n.strip() for n in (_read(env, "HOTLINE_MISSED_CALL_NUMBERS") or "").split(",") if n.strip())
    content_line = _read(env, "CONTENT_LINE_NUMBER") or None
    if content_line and (content_line == hotline_number or content_line in missed):
        errors.append("CONTENT_LINE_NUMBER must be a number of its own, not the hotline's or a missed-call number")
    for n in [hotline_number, *missed, *([content_line] if content_line else [])]:
        if not n.startswith("+") or not n[1:].isdigit():
            errors.append(f"{n!r} (HOTLINE_NUMBER / HOTLINE_MISSED_CALL_NUMBERS) must be E.164, like +85523000000")

    tz = _read(env, "HOTLINE_TIMEZONE") or "Asia/Phnom_Penh"
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        errors.append(f"HOTLINE_TIMEZONE={tz!r} is not an IANA time zone such as Asia/Phnom_Penh")

    secret_key = need("SECRET_KEY")
    recording_key = _read(env, "DATA_KEY") or need("RECORDING_KEY")  # DATA_KEY is the newer name
    if recording_key:
        from hotline.crypto import key_problem

        problem = key_problem(recording_key)
        if problem:
            errors.append(f"DATA_KEY / RECORDING_KEY: {problem}")
    if production:
        errors.extend(_keys_beside_data(env, instance))

    # The simulator signs webhooks with the real auth token: off wherever real texts can go out.
    simulator = (_read(env, "HOTLINE_SIMULATOR") or ("off" if production or rest_enabled else "open")).lower()
    if simulator not in SIMULATOR_MODES:
        errors.append(f"HOTLINE_SIMULATOR={simulator!r} must be 'off', 'staff' or 'open'")
    elif simulator == "open" and (production or rest_enabled):
        errors.append("HOTLINE_SIMULATOR=open is only allowed in embedded mode without Twilio REST credentials; "
                      "use 'staff' (admins, simulator numbers only) or 'off'")

    # Legal aid and callbacks (see README "Legal aid pipeline").
    escalate_after = _int(env, "ESCALATE_AFTER_MINUTES", 15, 1, errors)
    calling_hours = _read(env, "CALLING_HOURS") or "08:00-20:00"
    try:
        parse_calling_hours(calling_hours)
    except ValueError as exc:
        errors.append(f"CALLING_HOURS: {exc}")
    max_attempts = _int(env, "CALLBACK_MAX_ATTEMPTS", 3, 1, errors)
    retry_minutes = _int(env, "CALLBACK_RETRY_MINUTES", 60, 1, errors)
    delete_remote = _bool(env, "RECORDINGS_DELETE_REMOTE", False, errors)
    recordings_dir = _read(env, "RECORDINGS_DIR")
    content_dir = _read(env, "CONTENT_DIR")
    content_check = _int(env, "CONTENT_CHECK_SECONDS", 2, 1, errors)
    retention_days = _int(env, "RETENTION_DAYS", 365, 0, errors) or None  # 0: keep everything
    report_min_cell = _int(env, "REPORT_MIN_CELL", 5, 1, errors)
    worker_tick = _int(env, "WORKER_TICK_SECONDS", 15, 1, errors)
    trusted_proxies = _int(env, "TRUSTED_PROXIES", 0, 0, errors)
    channels, channel_problems = parse_channels(env)
    errors.extend(channel_problems)

    if errors:
        raise SettingsError("Settings are not valid:\n  - " + "\n  - ".join(errors))

    return Settings(
        env=mode,
        instance_path=instance,
        database_url=database_url,
        redis_url=redis_url,
        twilio_account_sid=account_sid or generated.get("TWILIO_ACCOUNT_SID", ""),
        twilio_auth_token=auth_token or generated.get("TWILIO_AUTH_TOKEN", ""),
        twilio_rest_enabled=rest_enabled,
        twilio_api_base_url=api_base.rstrip("/") if api_base else None,
        public_base_url=public,
        audio_base_url=audio_base.rstrip("/") if audio_base else None,
        secret_key=secret_key,
        recording_key=recording_key,
        hotline_number=hotline_number,
        missed_call_numbers=missed,
        content_line_number=content_line,
        oncall=oncall,
        timezone=tz,
        simulator=simulator,
        log_level=(_read(env, "HOTLINE_LOG_LEVEL") or "INFO").upper(),
        escalate_after_minutes=escalate_after,
        calling_hours=calling_hours,
        callback_max_attempts=max_attempts,
        callback_retry_minutes=retry_minutes,
        recordings_delete_remote=delete_remote,
        recordings_dir=Path(recordings_dir).resolve() if recordings_dir else None,
        content_dir=Path(content_dir).resolve() if content_dir else None,
        content_check_seconds=content_check,
        retention_days=retention_days,
        report_min_cell=report_min_cell,
        worker_tick_seconds=worker_tick,
        trusted_proxies=trusted_proxies,
        channels=channels,
    )


def _keys_beside_data(env: Mapping[str, str], instance: Path) -> list[str]:
    """Production refuses a data key file kept in the instance folder, the recordings folder or next
    to a SQLite database: whoever copies the data (a backup, a stolen disk) must not get the key too."""
    from hotline.crypto import key_beside_data

    folders = [instance, Path(_read(env, "RECORDINGS_DIR") or instance / "recordings")]
    db_url = _read(env, "DATABASE_URL") or ""
    if db_url.startswith("sqlite:///"):
        folders.append(Path(db_url.removeprefix("sqlite:///")).parent)
    problems = []
    for name in ("DATA_KEY", "RECORDING_KEY"):
        path = env.get(f"{name}_FILE")
        if path and not env.get(name):
            folder = key_beside_data(Path(path), folders)
            if folder is not None:
                problems.append(f"{name}_FILE={path!r} is inside {folder}, beside the data it encrypts: "
                                "keep the key elsewhere (a secret store, or a file outside the data volumes)")
    return problems


def normalise_database_url(url: str) -> str:
    """Accept the postgres:// and postgresql:// forms hosting providers hand out; use psycopg 3."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _hide_password(url: str) -> str:
    """`postgresql://u:secret@h/db` -> `postgresql://u:***@h/db`: a settings error is printed and logged."""
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@", 1)
    return url
