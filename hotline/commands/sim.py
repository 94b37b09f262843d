"""`hotline call` and `hotline sms`: the simulator in a terminal, against a running app.

Both go over real HTTP to the app's /twilio/* webhooks, signed with the auth token as Twilio signs.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import click

from hotline.phones import to_e164
from hotline.settings import Settings
from hotline.simclient import CallError, HttpPoster, PhoneClient, Step, load_prompts
from hotline.simclient.recordings import RecordingStore


def make_client(s: Settings, url: str | None) -> PhoneClient:
    base = (url or s.public_base_url).rstrip("/")
    return PhoneClient(HttpPoster(base, s.twilio_auth_token), account_sid=s.twilio_account_sid,
                       hotline_number=s.hotline_number, prompts=load_prompts())


def player() -> list[str] | None:
    """A command that plays an audio URL, if this machine has one."""
    if shutil.which("ffplay"):
        return ["ffplay", "-nodisp", "-autoexit", "-loglevel", "quiet"]
    if shutil.which("mpv"):
        return ["mpv", "--no-video", "--really-quiet"]
    return None


def describe(event: dict[str, Any], lang: str | None, verbose: bool) -> str | None:
    kind = event["kind"]
    if kind == "play":
        text = event.get("text") or "(no text in the script)"
        line = f"  ▶ {event['name']}.mp3  {text}"
        own = event["name"].split("/", 1)[0]
        if lang and lang != own and event.get("texts", {}).get(lang):
            line += f"\n      ({lang}) {event['texts'][lang]}"
        return line
    if kind == "say":
        return f"  🗣 {event['text']}" + (f"  [{event['language']}]" if event.get("language") else "")
    if kind in ("webhook", "callback"):
        return f"  · {event['method']} {event['url']} -> {event['status']}" if verbose else None
    simple = {"beep": "  (beep: recording)", "hangup": "  (the hotline hung up)", "caller-hangup": "  (you hung up)",
              "reject": "  (call rejected, not answered)"}
    if kind in simple:
        return simple[kind]
    if kind == "dial":
        return f"  ☏ dialling {', '.join(event['numbers'])}"
    if kind == "dial-result":
        return f"  dial result: {event['status']}" + (" (connected)" if event.get("bridged") else " (not connected)")
    if kind == "leg-keys":
        return f"  ☏ the lawyer's phone pressed {event['digits']}"
    if kind == "recorded":
        return f"  ● recording sent: {event['url']} ({event['duration']}s)"
    if kind == "ended":
        return f"call ended: {event['status']}"
    if kind == "error":
        return f"  ⚠ {event['message']}"
    return None


def show(step: Step, lang: str | None, verbose: bool, play: list[str] | None) -> None:
    for event in step.events:
        line = describe(event, lang, verbose)
        if line:
            click.echo(line)
        if verbose and event["kind"] == "webhook":
            click.echo("    " + event["twiml"].replace("\n", "\n    "))
        if play and event["kind"] == "play":
            subprocess.run([*play, event["url"]], check=False, timeout=300)


def ask(waiting: dict[str, Any]) -> str | None:
    """One line from stdin; None at end of input (the caller hangs up)."""
    if waiting["kind"] == "gather":
        prompt = "keys (blank = silence, h = hang up)"
    elif waiting["kind"] == "record":
        prompt = "recording: Enter sends the sample recording, h hangs up"
    else:
        prompt = "ringing the lawyer: a = answer as the lawyer (press 1), v = voicemail, Enter = nobody answers"
    line = click.prompt(prompt, default="", show_default=False, prompt_suffix="> ")
    return None if line.strip().lower() in ("h", "hangup", "q") else line.strip()


def run_call(client: PhoneClient, s: Settings, from_: str, to: str | None, lang: str | None,
             verbose: bool, play: list[str] | None) -> str:
    click.echo(f"calling {to or client.hotline_number} from {from_} via {client.poster.base_url}")
    step = client.start_call(from_, to)
    show(step, lang, verbose, play)
    recordings = RecordingStore(s.instance_path / "simulator" / "recordings",
                                client.poster.base_url + "/simulator/recordings")
    while not step.ended and (waiting := step.waiting) is not None:
        try:
            line = ask(waiting)
        except click.Abort:
            line = None
        if line is None:
            step = client.hangup(step.state)
        elif waiting["kind"] == "gather":
            step = client.press(step.state, line or None)
        elif waiting["kind"] == "record":
            step = client.record(step.state, recordings.add_sample())
        else:
            answer = line.lower()[:1]
            step = client.dial_result(step.state, {"a": "accept", "v": "voicemail"}.get(answer, "no-answer"))
        show(step, lang, verbose, play)
    return step.state.status


def _number(value: str) -> str:
    number = to_e164(value)
    if number is None:
        raise click.BadParameter(f"{value!r} is not a phone number (try +855 12 345 678)")
    return number


def register(cli: click.Group) -> None:
    from hotline.cli import settings_or_exit

    @cli.command("call", help="Call the hotline from a terminal: prints each prompt, reads keys from stdin.")
    @click.option("--from", "from_", required=True, help="The caller's number, e.g. +85512345678.")
    @click.option("--to", default=None, help="The number called (default: HOTLINE_NUMBER; a missed-call number works).")
    @click.option("--lang", type=click.Choice(["km", "th", "en"]), default=None,
                  help="Also show each prompt's text in this language (a translation for staff).")
    @click.option("--url", default=None, help="The running app (default: PUBLIC_BASE_URL).")
    @click.option("--play/--no-play", default=None, help="Play the audio (default: when ffplay or mpv exists).")
    @click.option("-v", "--verbose", is_flag=True, help="Show every webhook and the TwiML it answered.")
    def call(from_: str, to: str | None, lang: str | None, url: str | None, play: bool | None, verbose: bool) -> None:
        s = settings_or_exit()
        command = player() if play is not False else None
        if play and command is None:
            raise click.ClickException("no audio player found (install ffmpeg for ffplay, or mpv)")
        try:
            run_call(make_client(s, url), s, _number(from_), _number(to) if to else None, lang, verbose, command)
        except CallError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:
            raise click.ClickException(f"cannot reach the hotline: {exc}") from None

    @cli.command("sms", help="Send one text to the hotline and print the reply.")
    @click.option("--from", "from_", required=True, help="The sender's number, e.g. +85512345678.")
    @click.option("--to", default=None, help="The number texted (default: HOTLINE_NUMBER).")
    @click.option("--url", default=None, help="The running app (default: PUBLIC_BASE_URL).")
    @click.argument("text")
    def sms(from_: str, to: str | None, url: str | None, text: str) -> None:
        s = settings_or_exit()
        try:
            result = make_client(s, url).send_sms(_number(from_), text, _number(to) if to else None)
        except OSError as exc:
            raise click.ClickException(f"cannot reach the hotline: {exc}") from None
        if result.error:
            raise click.ClickException(f"the hotline answered {result.error}")
        if not result.replies:
            click.echo("(no reply)")
        for reply in result.replies:
            click.echo(reply.body)
            click.echo(f"  [{reply.parts} SMS part{'s' if reply.parts != 1 else ''}, {reply.encoding}]")
