"""Embedded-mode secrets: processes starting at once on a fresh instance folder agree on one set."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROGRAM = """
import json, sys
from hotline.settings import load_settings
s = load_settings({"HOTLINE_INSTANCE": sys.argv[1]})
print(json.dumps([s.secret_key, s.twilio_auth_token]))
"""


def test_processes_starting_together_on_a_fresh_folder_share_one_set_of_secrets(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    procs = [subprocess.Popen([sys.executable, "-c", PROGRAM, str(instance)], stdout=subprocess.PIPE, text=True)
             for _ in range(8)]
    seen = {out.strip() for out, _ in (p.communicate(timeout=60) for p in procs)}
    assert all(p.returncode == 0 for p in procs)
    assert len(seen) == 1, seen
    stored = json.loads((instance / "secrets.json").read_text())
    assert json.loads(seen.pop()) == [stored["SECRET_KEY"], stored["TWILIO_AUTH_TOKEN"]]
    assert (instance / "secrets.json").stat().st_mode & 0o777 == 0o600
    assert not list(instance.glob("*.tmp"))
