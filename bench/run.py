"""Load benchmark: the hotline against a bare Flask app, same gunicorn settings, same signed requests.

    python bench/run.py                       # both backends, 1 and 2 web processes, writes bench/RESULTS.md
    python bench/run.py --backend embedded --web-workers 2 --duration 5 --no-write

For each backend (embedded: SQLite + the embedded redis-server; postgres: PostgreSQL + Redis over TCP)
and each number of web processes it:

1. starts the hotline under gunicorn (gthread, as `hotline run` does), its RQ worker, and an
   in-process fake of Twilio's REST API that receives what the worker sends;
2. walks realistic call flows once (language, menus, messages, urgent path) by following the TwiML,
   to learn each step's URL and answer size;
3. replays them with wrk (a C load tool, one thread, so it leaves the cores to the server) from files
   of pre-signed requests, in phases: first step of many distinct calls, then the Gather steps of the
   calls that exist (step k of every call is sent before step k+1 of any call, so each is valid),
   then inbound SMS from many numbers;
4. replays the very same files against bench/bare_app.py under the same gunicorn settings;
5. measures an urgent SMS's way to the on-call lawyer (webhook -> outbox -> worker -> fake Twilio),
   idle and under IVR load, and the memory of every web and worker process.

Only 127.0.0.1 is ever a target; every phase is bounded in time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hotline.fakes.twilio_rest import FakeTwilio  # noqa: E402
from hotline.telephony.signature import sign  # noqa: E402

ACCOUNT_SID = "AC" + "b" * 32
AUTH_TOKEN = "bench-auth-token-0123456789abcdef"
RECORDING_KEY = "x4TkS0eH7aXnE7z3Q2r5t7w9y1B3D5F7H9J1L3N5P7Q="
ONCALL_KH = "+85512345001"
ONCALL = f"TH:+66812345001,TH:+66812345002,KH:{ONCALL_KH}"
HOTLINE_NUMBER = "+85523000000"
LUA = Path(__file__).resolve().parent / "signed.lua"

# Call flows as the keys a caller presses at each Gather, in order. The walker follows the TwiML, so
# a flow stops where the menu hangs up, records or dials; unknown keys are answered by a re-prompt.
DEFAULT_FLOWS: dict[str, list[str]] = {
    "Khmer, papers, main menu, wages": ["1", "2", "0", "3"],
    "Khmer, warning signs, repeat": ["1", "4", "*"],
    "Thai, useful numbers, main menu, money": ["2", "7", "0", "5"],
    "English, before you go": ["3", "1"],
    "Khmer, call me back": ["1", "8"],
    "Khmer, urgent (9)": ["1", "9"],
}
# How often each flow is replayed: urgent calls are a small share of a busy hour.
FLOW_WEIGHTS = {"Khmer, papers, main menu, wages": 4, "Khmer, warning signs, repeat": 3,
                "Thai, useful numbers, main menu, money": 3, "English, before you go": 1,
                "Khmer, call me back": 1, "Khmer, urgent (9)": 1}
# Inbound texts of a busy hour (urgent ones are timed on their own, below).
DEFAULT_SMS_BODIES = ["HELP", "1", "2", "3", "4", "CALL", "hello", "ជួយ", "LANG 1", "my boss keeps my passport",
                      "ช่วยด้วย", "7", "info"]
TARGETS = {"voice-first": 0.5, "voice-steps": 0.5, "sms": 0.3}
P99_TARGET_MS = {"voice-first": 25.0, "voice-steps": 25.0}


# -- small helpers ----------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kh_number(rng: random.Random) -> str:
    return "+85512" + f"{rng.randrange(10**6):06d}"


def th_number(rng: random.Random) -> str:
    return "+6681" + f"{rng.randrange(10**7):07d}"


def call_sid(rng: random.Random) -> str:
    return "CA" + "".join(rng.choice("0123456789abcdef") for _ in range(32))


def msg_sid(rng: random.Random) -> str:
    return "SM" + "".join(rng.choice("0123456789abcdef") for _ in range(32))


def voice_params(sid: str, from_: str) -> dict[str, str]:
    return {"AccountSid": ACCOUNT_SID, "ApiVersion": "2010-04-01", "CallSid": sid, "CallStatus": "in-progress",
            "Called": HOTLINE_NUMBER, "Caller": from_, "Direction": "inbound", "From": from_, "FromCountry": "",
            "FromCity": "", "To": HOTLINE_NUMBER, "ToCountry": "KH"}


def sms_params(body: str, from_: str, sid: str) -> dict[str, str]:
    return {"AccountSid": ACCOUNT_SID, "ApiVersion": "2010-04-01", "Body": body, "From": from_, "MessageSid": sid,
            "SmsMessageSid": sid, "SmsSid": sid, "NumMedia": "0", "NumSegments": "1", "SmsStatus": "received",
            "To": HOTLINE_NUMBER, "FromCountry": "", "ToCountry": "KH"}


def post(base: str, path: str, params: dict[str, str], timeout: float = 10.0) -> tuple[int, bytes]:
    data = urllib.parse.urlencode(params).encode()
    req = urllib.request.Request(base + path, data=data, method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": sign(AUTH_TOKEN, base + path, params)})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - always http://127.0.0.1
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def signed_line(base: str, path: str, params: dict[str, str]) -> str:
    return f"{path}\t{sign(AUTH_TOKEN, base + path, params)}\t{urllib.parse.urlencode(params)}\n"


# -- backends ---------------------------------------------------------------------------------------

@dataclass
class Backend:
    name: str
    env: dict[str, str]
    database_url: str
    cleanup: list[Any] = field(default_factory=list)

    def close(self) -> None:
        for fn in reversed(self.cleanup):
            fn()


def make_backend(name: str, workdir: Path, pg_url: str, redis_url: str) -> Backend:
    from hotline.settings import normalise_database_url

    instance = workdir / f"instance-{name}"
    instance.mkdir(parents=True, exist_ok=True)
    env = {"HOTLINE_INSTANCE": str(instance), "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
           "HOTLINE_ONCALL": ONCALL, "HOTLINE_NUMBER": HOTLINE_NUMBER, "SECRET_KEY": "bench-secret-key",
           "RECORDING_KEY": RECORDING_KEY, "HOTLINE_LOG_LEVEL": "INFO"}
    if name == "embedded":
        from hotline.embedded import EmbeddedRedis

        redis = EmbeddedRedis(instance).start()
        url = f"sqlite:///{instance / 'hotline.db'}"
        backend = Backend(name, env, url, [redis.stop])
    else:
        import sqlalchemy as sa
        from redis import Redis

        admin_url = normalise_database_url(pg_url)
        parts = urllib.parse.urlsplit(admin_url)
        dbname = f"hotline_bench_{os.getpid()}"  # two runs at once must not share (or drop) one database
        admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{dbname}"'))
        url = urllib.parse.urlunsplit(parts._replace(path=f"/{dbname}"))
        # A Redis db of its own (15), so the test suites' dbs (1..n) are never touched.
        rparts = urllib.parse.urlsplit(redis_url)
        rurl = urllib.parse.urlunsplit(rparts._replace(path="/15"))
        Redis.from_url(rurl).flushdb()
        env.update(DATABASE_URL=url, REDIS_URL=rurl)

        def drop() -> None:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))
            admin.dispose()

        backend = Backend(name, env, url, [drop])
    if name == "embedded":
        env["DATABASE_URL"] = url
    # Migrate with the tree under test (it may be a snapshot: see --snapshot).
    subprocess.run([sys.executable, "-m", "hotline", "db", "upgrade"], env={**os.environ, **env}, check=True,
                   cwd=os.environ.get("BENCH_TREE", str(ROOT)), stdout=subprocess.DEVNULL)
    return backend


# -- processes --------------------------------------------------------------------------------------

class Proc:
    def __init__(self, args: list[str], env: dict[str, str], log: Path):
        self.log = log
        self._fh = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.p = subprocess.Popen(args, env=env, cwd=env.get("BENCH_TREE", str(ROOT)), stdin=subprocess.DEVNULL,
                                  stdout=self._fh, stderr=subprocess.STDOUT, start_new_session=True)

    def rss_mb(self) -> dict[str, float]:
        import psutil

        out: dict[str, float] = {}
        try:
            me = psutil.Process(self.p.pid)
            out["main"] = me.memory_info().rss / 2**20
            for i, child in enumerate(me.children(recursive=True)):
                out[f"child{i}"] = child.memory_info().rss / 2**20
        except psutil.Error:
            pass
        return out

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self._fh.close()


def gunicorn(app_spec: str, port: int, workers: int, threads: int, env: dict[str, str], log: Path) -> Proc:
    args = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
            "--worker-class", "gthread", "--threads", str(threads), "--keep-alive", "5", "--no-control-socket",
            app_spec]
    proc = Proc(args, env, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.p.poll() is not None:
            raise RuntimeError(f"gunicorn {app_spec} exited; see {log}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):  # noqa: S310
                break
        except urllib.error.HTTPError:
            break  # any HTTP answer means it is serving
        except OSError:
            time.sleep(0.1)
    else:
        proc.stop()
        raise RuntimeError(f"gunicorn {app_spec} did not start; see {log}")
    # gunicorn boots workers one by one: give each a moment so the first phase is not their import time.
    time.sleep(0.5 * workers)
    return proc


# -- flows ------------------------------------------------------------------------------------------

@dataclass
class Step:
    path: str  # path and query, as the TwiML gave it (relative to the public base)
    extra: dict[str, str]  # Digits and friends
    size: int  # bytes of the answer


def _to_path(url: str, base: str, current: str) -> str:
    if url.startswith(base):
        url = url[len(base):]
    return urllib.parse.urljoin(current, url) if not url.startswith("/") else url


def walk(base: str, digits: list[str], sid: str, from_: str) -> list[Step]:
    """Follow one call's TwiML: the first POST, then each Gather action with the next key, each Redirect."""
    steps: list[Step] = []
    path, extra = "/twilio/voice", dict[str, str]()
    keys = list(digits)
    for _ in range(20):
        status, body = post(base, path, {**voice_params(sid, from_), **extra})
        if status != 200:
            raise RuntimeError(f"walk: {path} answered {status}: {body[:300]!r}")
        steps.append(Step(path, extra, len(body)))
        root = ET.fromstring(body)  # noqa: S314 - our own server's answer
        nxt = None
        for el in root:
            if el.tag == "Gather":
                if keys:  # a caller who has pressed every key of the flow hangs up here
                    nxt = (_to_path(el.get("action") or path, base, path), {"Digits": keys.pop(0),
                                                                           "FinishedOnKey": ""})
                break
            if el.tag == "Redirect" and el.text:
                nxt = (_to_path(el.text.strip(), base, path), {})
                break
            if el.tag in ("Hangup", "Reject", "Dial", "Record", "Enqueue"):
                break
        if nxt is None:
            break
        path, extra = nxt
    return steps


@dataclass
class Flows:
    template_sid: str
    flows: dict[str, list[Step]]
    sms_sizes: dict[str, int]

    def sizes(self) -> dict[str, int]:
        by_path: dict[str, list[int]] = {}
        for steps in self.flows.values():
            for st in steps:
                by_path.setdefault(urllib.parse.urlsplit(st.path).path, []).append(st.size)
        by_path.setdefault("/twilio/sms", []).extend(self.sms_sizes.values())
        return {p: int(median(v)) for p, v in by_path.items() if v}


def discover(base: str, flows: dict[str, list[str]], sms_bodies: list[str], rng: random.Random,
             database_url: str) -> Flows:
    out: dict[str, list[Step]] = {}
    for name, digits in flows.items():
        sid = call_sid(rng)
        steps = walk(base, digits, sid, kh_number(rng))
        ids = call_ids(database_url, [sid])
        out[name] = [templatize(st, sid, ids.get(sid)) for st in steps]
    sms_sizes = {}
    for body in sms_bodies:
        status, answer = post(base, "/twilio/sms", sms_params(body, kh_number(rng), msg_sid(rng)))
        sms_sizes[body] = len(answer)
    return Flows("{sid}", out, sms_sizes)


def templatize(st: Step, sid: str, call_id: int | None) -> Step:
    """The step for any call: its CallSid, and a query value equal to its database id (state carried
    in the action URL), become placeholders."""
    path = st.path.replace(sid, "{sid}")
    if call_id is not None:
        parts = urllib.parse.urlsplit(path)
        query = [(k, "{cid}" if v == str(call_id) else v) for k, v in urllib.parse.parse_qsl(parts.query)]
        path = parts.path + ("?" + "&".join(f"{k}={urllib.parse.quote(v, safe='{}')}" for k, v in query)
                             if query else "")
    return Step(path, st.extra, st.size)


def call_ids(database_url: str, sids: list[str] | None = None) -> dict[str, int]:
    import sqlalchemy as sa

    from hotline.db import make_engine
    from hotline.models import Call

    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            query = sa.select(Call.call_sid, Call.id)
            if sids is not None:
                query = query.where(Call.call_sid.in_(sids))
            return {sid: cid for sid, cid in conn.execute(query)}
    finally:
        engine.dispose()


# -- request files ----------------------------------------------------------------------------------

@dataclass
class CallPlan:
    sid: str
    from_: str
    flow: str


def plan_calls(n: int, flows: Flows, rng: random.Random) -> list[CallPlan]:
    names = [name for name in flows.flows for _ in range(FLOW_WEIGHTS.get(name, 1))]
    plans = []
    for i in range(n):
        frm = kh_number(rng) if i % 4 else th_number(rng)
        plans.append(CallPlan(call_sid(rng), frm, names[i % len(names)]))
    return plans


def write_first_steps(path: Path, base: str, plans: list[CallPlan]) -> None:
    with open(path, "w") as f:
        for p in plans:
            f.write(signed_line(base, "/twilio/voice", voice_params(p.sid, p.from_)))


def write_later_steps(path: Path, base: str, plans: list[CallPlan], flows: Flows, ids: dict[str, int]) -> int:
    """Step 2 of every call, then step 3 of every call, ...: thousands of requests lie between two
    steps of one call, so 32 connections never deliver them out of order."""
    n = 0
    depth = max(len(s) for s in flows.flows.values())
    with open(path, "w") as f:
        for k in range(1, depth):
            for p in plans:
                steps = flows.flows[p.flow]
                if k < len(steps):
                    st = steps[k]
                    f.write(signed_line(base, st.path.replace("{sid}", p.sid).replace("{cid}", str(ids[p.sid])),
                                        {**voice_params(p.sid, p.from_), **st.extra}))
                    n += 1
    return n


def write_sms(path: Path, base: str, n: int, bodies: list[str], rng: random.Random) -> None:
    with open(path, "w") as f:
        for i in range(n):
            f.write(signed_line(base, "/twilio/sms", sms_params(bodies[i % len(bodies)], kh_number(rng),
                                                                msg_sid(rng))))


# -- wrk --------------------------------------------------------------------------------------------

@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int

    @classmethod
    def parse(cls, out: str) -> "WrkResult":
        line = next(ln for ln in reversed(out.splitlines()) if ln.startswith("{"))
        d = json.loads(line)
        errs = d["connect"] + d["read"] + d["write"] + d["status"] + d["timeout"]
        return cls(d["requests"] / (d["duration_us"] / 1e6), d["p50_us"] / 1000, d["p99_us"] / 1000,
                   d["requests"], errs)


def wrk(port: int, file: Path, duration: float, connections: int, threads: int = 1) -> WrkResult:
    args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout", "5s",
            "-s", str(LUA), f"http://127.0.0.1:{port}", "--", str(file), str(threads)]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=duration + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed: {proc.stderr}\n{proc.stdout}")
    return WrkResult.parse(proc.stdout)


# -- the run ----------------------------------------------------------------------------------------

@dataclass
class Options:
    duration: float
    connections: int
    threads: int
    web_workers: list[int]
    calls: int
    sms: int
    urgent: int
    urgent_body: str
    flows: dict[str, list[str]]
    sms_bodies: list[str]
    worker_during_load: bool


@dataclass
class Row:
    backend: str
    web: int
    phase: str
    hot: WrkResult
    bare: WrkResult

    @property
    def ratio(self) -> float:
        return self.hot.rps / self.bare.rps if self.bare.rps else 0.0


@dataclass
class BackendReport:
    name: str
    rows: list[Row] = field(default_factory=list)
    memory: dict[str, float] = field(default_factory=dict)
    urgent_idle: list[float] = field(default_factory=list)
    urgent_load: list[float] = field(default_factory=list)
    urgent_lost: int = 0
    drain_s: float | None = None
    step_errors: int = 0
    flows: dict[str, list[str]] = field(default_factory=dict)


@contextmanager
def hotline_worker(backend: Backend, log: Path) -> Iterator[Proc]:
    proc = Proc([sys.executable, "-m", "hotline", "worker"], {**os.environ, **backend.env}, log)
    try:
        yield proc
    finally:
        proc.stop()


def count_failures(log: Path) -> int:
    text = log.read_text(errors="replace") if log.exists() else ""
    return text.count("step failed at") + text.count(" 500 ")


def run_backend(name: str, opts: Options, workdir: Path, pg_url: str, redis_url: str) -> BackendReport:
    report = BackendReport(name)
    backend = make_backend(name, workdir, pg_url, redis_url)
    fake = FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN).start()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, **backend.env, "PUBLIC_BASE_URL": base, "TWILIO_API_BASE_URL": fake.url}
    backend.env.update(PUBLIC_BASE_URL=base, TWILIO_API_BASE_URL=fake.url)
    rng = random.Random(7)
    logs = workdir / f"logs-{name}"
    logs.mkdir(exist_ok=True)
    try:
        with hotline_worker(backend, logs / "worker.log") as worker:
            for web in opts.web_workers:
                hot = gunicorn("hotline:create_app()", port, web, opts.threads, env, logs / f"web{web}.log")
                try:
                    flows = discover(base, opts.flows, opts.sms_bodies, rng, backend.database_url)
                    report.flows = {k: [s.path + (f" [{s.extra['Digits']}]" if "Digits" in s.extra else "")
                                        for s in v] for k, v in flows.flows.items()}
                    files = prepare_files(workdir / f"{name}-{web}", base, flows, opts, rng)
                    # warm-up: imports, connection pools, caches; not measured
                    wrk(port, files["warmup"], 2, opts.connections)
                    results = {}
                    results["voice-first"] = wrk(port, files["voice-first"], opts.duration, opts.connections)
                    files["voice-steps"] = later_steps_for_existing(files, base, flows, backend.database_url)
                    results["voice-steps"] = wrk(port, files["voice-steps"], opts.duration, opts.connections)
                    results["sms"] = wrk(port, files["sms"], opts.duration, opts.connections)
                    mem = hot.rss_mb()
                    report.memory[f"web master ({web} web)"] = mem.pop("main", 0.0)
                    for i, v in enumerate(mem.values()):
                        report.memory[f"web process {i + 1} ({web} web)"] = v
                finally:
                    hot.stop()
                report.step_errors += count_failures(logs / f"web{web}.log")
                bare_env = {**os.environ, "BENCH_BARE_SIZES": json.dumps(flows.sizes())}
                bare = gunicorn("bench.bare_app:create_app()", port, web, opts.threads, bare_env,
                                logs / f"bare{web}.log")
                try:
                    wrk(port, files["warmup"], 2, opts.connections)
                    for phase in ("voice-first", "voice-steps", "sms"):
                        report.rows.append(Row(name, web, phase, results[phase],
                                               wrk(port, files[phase], opts.duration, opts.connections)))
                finally:
                    bare.stop()
            # urgent SMS -> on-call lawyer, through the worker
            hot = gunicorn("hotline:create_app()", port, max(opts.web_workers), opts.threads, env,
                           logs / "web-urgent.log")
            try:
                report.drain_s = wait_drained(backend, timeout=120)
                fake.reset()
                report.urgent_idle, lost1 = urgent_latency(base, fake, opts.urgent, opts.urgent_body, rng)
                load_plans = plan_calls(max(opts.calls, 5000), flows, rng)
                load_file = workdir / f"{name}-urgent-load.tsv"
                write_first_steps(load_file, base, load_plans)
                bg = threading.Thread(target=wrk, args=(port, load_file, opts.duration, opts.connections))
                bg.start()
                time.sleep(1.0)
                report.urgent_load, lost2 = urgent_latency(base, fake, opts.urgent, opts.urgent_body, rng,
                                                           budget=opts.duration - 1.5)
                bg.join()
                report.urgent_lost = lost1 + lost2
                wmem = worker.rss_mb()
                report.memory["worker"] = wmem.pop("main", 0.0)
                for i, v in enumerate(wmem.values()):
                    report.memory[f"worker child {i + 1}"] = v
            finally:
                hot.stop()
            report.step_errors += count_failures(logs / "web-urgent.log")
    finally:
        fake.stop()
        backend.close()
    return report


def prepare_files(prefix: Path, base: str, flows: Flows, opts: Options, rng: random.Random) -> dict[str, Path]:
    prefix.mkdir(parents=True, exist_ok=True)
    plans = plan_calls(opts.calls, flows, rng)
    warm = plan_calls(2000, flows, rng)
    files = {"warmup": prefix / "warmup.tsv", "voice-first": prefix / "voice-first.tsv", "sms": prefix / "sms.tsv"}
    write_first_steps(files["warmup"], base, warm)
    write_first_steps(files["voice-first"], base, plans)
    write_sms(files["sms"], base, opts.sms, opts.sms_bodies, rng)
    (prefix / "plans.json").write_text(json.dumps([p.__dict__ for p in plans]))
    return files


def later_steps_for_existing(files: dict[str, Path], base: str, flows: Flows, database_url: str) -> Path:
    """Gather steps only for calls whose first step the hotline has stored."""
    prefix = files["voice-first"].parent
    plans = [CallPlan(**p) for p in json.loads((prefix / "plans.json").read_text())]
    known = call_ids(database_url)
    existing = [p for p in plans if p.sid in known]
    out = prefix / "voice-steps.tsv"
    n = write_later_steps(out, base, existing, flows, known)
    if n == 0:
        # The menu has no Gather yet (or no call was stored): replay first steps so the phase still runs.
        shutil.copyfile(files["voice-first"], out)
    return out


def wait_drained(backend: Backend, timeout: float) -> float | None:
    """Seconds until the worker has run every outbox job the load wrote; None if it had not by `timeout`."""
    import sqlalchemy as sa

    from hotline.db import make_engine
    from hotline.models import OutboxJob, OutboxStatus

    engine = make_engine(backend.database_url)
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < timeout:
            with engine.connect() as conn:
                left = conn.scalar(sa.select(sa.func.count(OutboxJob.id)).where(
                    OutboxJob.status.in_([OutboxStatus.PENDING, OutboxStatus.RUNNING]),
                    sa.or_(OutboxJob.run_after.is_(None), OutboxJob.run_after <= sa.func.now())))
            if not left:
                return time.monotonic() - t0
            time.sleep(0.25)
        return None
    finally:
        engine.dispose()


def urgent_latency(base: str, fake: FakeTwilio, n: int, body: str, rng: random.Random,
                   budget: float | None = None) -> tuple[list[float], int]:
    """Seconds from an urgent SMS reaching the webhook to the lawyer's SMS reaching Twilio."""
    times: list[float] = []
    lost = 0
    t_start = time.monotonic()
    for _ in range(n):
        if budget is not None and time.monotonic() - t_start > budget:
            break
        before = len(fake.sms_to(ONCALL_KH))
        t0 = time.monotonic()
        status, _answer = post(base, "/twilio/sms", sms_params(body, kh_number(rng), msg_sid(rng)))
        while time.monotonic() - t0 < 10:
            if len(fake.sms_to(ONCALL_KH)) > before:
                times.append(time.monotonic() - t0)
                break
            time.sleep(0.002)
        else:
            lost += 1
        time.sleep(0.2)
    return times, lost


# -- output -----------------------------------------------------------------------------------------

def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def render(reports: list[BackendReport], opts: Options) -> str:
    lines = []
    lines.append(f"{opts.connections} connections, {opts.duration:g} s per phase, gunicorn gthread "
                 f"{opts.threads} threads per process, wrk 1 thread; "
                 f"{os.cpu_count()} cores; load average before the run {os.getloadavg()[0]:.2f}.")
    lines.append("")
    lines.append("| backend | web procs | phase | hotline req/s | p50 ms | p99 ms | bare req/s | p50 ms | p99 ms "
                 "| ratio | target |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in reports:
        for row in r.rows:
            tr = TARGETS[row.phase]
            p99t = P99_TARGET_MS.get(row.phase)
            ok = row.ratio >= tr and (p99t is None or row.hot.p99_ms <= p99t)
            target = f">= {tr}x" + (f", p99 <= {p99t:g} ms" if p99t else "")
            errs = f" ({row.hot.errors} errors)" if row.hot.errors else ""
            lines.append(f"| {row.backend} | {row.web} | {row.phase} | {row.hot.rps:.0f}{errs} | {row.hot.p50_ms:.1f} "
                         f"| {row.hot.p99_ms:.1f} | {row.bare.rps:.0f} | {row.bare.p50_ms:.1f} | {row.bare.p99_ms:.1f} "
                         f"| {row.ratio:.2f} | {target}: {'met' if ok else 'NOT met'} |")
    lines.append("")
    lines.append("Scaling from 1 to 2 web processes (hotline req/s):")
    lines.append("")
    lines.append("| backend | phase | 1 web | 2 web | gain |")
    lines.append("|---|---|---|---|---|")
    for r in reports:
        by = {(row.web, row.phase): row for row in r.rows}
        for phase in ("voice-first", "voice-steps", "sms"):
            a, b = by.get((1, phase)), by.get((2, phase))
            if a and b:
                lines.append(f"| {r.name} | {phase} | {a.hot.rps:.0f} | {b.hot.rps:.0f} | "
                             f"{b.hot.rps / a.hot.rps:.2f}x |")
    lines.append("")
    lines.append("Urgent SMS to the on-call lawyer's SMS at Twilio (webhook -> outbox -> worker -> REST), seconds:")
    lines.append("")
    lines.append("| backend | when | n | p50 | p90 | max | over 10 s | target |")
    lines.append("|---|---|---|---|---|---|---|---|")
    for r in reports:
        for when, vals in (("idle", r.urgent_idle), ("under IVR load", r.urgent_load)):
            p50 = pct(vals, 0.5)
            lines.append(f"| {r.name} | {when} | {len(vals)} | {p50:.2f} | {pct(vals, 0.9):.2f} | "
                         f"{max(vals) if vals else float('nan'):.2f} | {r.urgent_lost if when == 'idle' else ''} | "
                         f"p50 < 1 s: {'met' if p50 < 1 else 'NOT met'} |")
    lines.append("")
    lines.append("Memory (RSS, MiB):")
    lines.append("")
    lines.append("| backend | process | RSS MiB |")
    lines.append("|---|---|---|")
    for r in reports:
        for k, v in r.memory.items():
            lines.append(f"| {r.name} | {k} | {v:.0f} |")
    lines.append("")
    for r in reports:
        drained = f"{r.drain_s:.1f} s" if r.drain_s is not None else "not within 120 s"
        lines.append(f"- {r.name}: worker backlog after the load drained in {drained}; "
                     f"failed steps logged by the web processes: {r.step_errors}.")
    if reports and reports[0].flows:
        lines.append("")
        lines.append("Call flows replayed (path [key pressed]):")
        lines.append("")
        for name, steps in reports[0].flows.items():
            lines.append(f"- {name}: " + " -> ".join(steps))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", default="embedded,postgres",
                    help="embedded, postgres, or both comma-separated (default both)")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=4, help="gunicorn threads per web process")
    ap.add_argument("--web-workers", default="1,2", help="web process counts to run, e.g. 1,2")
    ap.add_argument("--calls", type=int, default=20000, help="distinct CallSids per run")
    ap.add_argument("--sms", type=int, default=20000, help="distinct inbound SMS per run")
    ap.add_argument("--urgent", type=int, default=20, help="urgent SMS to time")
    ap.add_argument("--urgent-body", default=os.environ.get("BENCH_URGENT_BODY", "SOS"))
    ap.add_argument("--flows", default=None, help="JSON {name: [keys...]} (default: bench's realistic flows)")
    ap.add_argument("--sms-bodies", default=None, help="JSON list of inbound SMS bodies")
    ap.add_argument("--pg-url", default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379"))
    ap.add_argument("--no-write", action="store_true", help="do not write bench/RESULTS.md")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (logs, request files)")
    ap.add_argument("--snapshot", metavar="REV", default=None,
                    help="benchmark a git revision (e.g. HEAD) exported to a temporary folder, not the work tree")
    args = ap.parse_args(argv)
    if not shutil.which("wrk"):
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    opts = Options(duration=args.duration, connections=args.connections, threads=args.threads,
                   web_workers=[int(x) for x in args.web_workers.split(",")], calls=args.calls, sms=args.sms,
                   urgent=args.urgent, urgent_body=args.urgent_body,
                   flows=json.loads(args.flows) if args.flows else default_flows(),
                   sms_bodies=json.loads(args.sms_bodies) if args.sms_bodies else DEFAULT_SMS_BODIES,
                   worker_during_load=True)
    workdir = Path(tempfile.mkdtemp(prefix="hotline-bench-"))
    commit = git_head(args.snapshot or "HEAD")  # what is measured: read before the run, not after
    if args.snapshot:
        tree = workdir / "tree"
        tree.mkdir()
        archive = subprocess.run(["git", "archive", args.snapshot], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
        os.environ["BENCH_TREE"] = str(tree)
        # The snapshot's packages come first; bench.bare_app falls back to this folder's.
        os.environ["PYTHONPATH"] = os.pathsep.join([str(tree), str(ROOT)])
    reports = []
    failed: list[str] = []
    try:
        for name in args.backend.split(","):
            print(f"== {name} ==", file=sys.stderr, flush=True)
            try:
                reports.append(run_backend(name.strip(), opts, workdir, args.pg_url, args.redis_url))
            except Exception as exc:  # noqa: BLE001 - report the other backend's figures all the same
                import traceback

                traceback.print_exc()
                failed.append(f"{name}: {type(exc).__name__}: {str(exc)[:300]}")
    finally:
        if args.keep:
            print(f"work folder kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    table = render(reports, opts)
    if failed:
        table += "\nRuns that failed: " + "; ".join(failed) + "\n"
    print(table)
    if not args.no_write:
        rev = args.snapshot or "work tree at"
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        head = (f"# Latest benchmark run\n\n`python bench/run.py` on {when}, "
                f"{rev} commit {commit}, Python {platform.python_version()}.\n\n")
        (Path(__file__).resolve().parent / "RESULTS.md").write_text(head + table)
    return 0


def default_flows() -> dict[str, list[str]]:
    """The bench's flows; BENCH_FLOWS (JSON) overrides them."""
    raw = os.environ.get("BENCH_FLOWS")
    return json.loads(raw) if raw else DEFAULT_FLOWS


def git_head(rev: str) -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, capture_output=True, text=True,
                              timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
