"""`hotline report`: the same suppressed tables as the console, as CSV, JSON or XLSX."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from hotline.cli import cli
from tests.test_reports import BODY, NOTE, PHONES, STAFF_NAME, crafted


@pytest.fixture
def env(settings, monkeypatch, db):
    crafted(db)
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("HOTLINE_INSTANCE", str(settings.instance_path))
    monkeypatch.delenv("REPORT_MIN_CELL", raising=False)
    return settings


ARGS = ["report", "--from", "2026-01-01", "--to", "2026-02-28", "--by", "month"]


def test_csv_to_stdout(env):
    result = CliRunner().invoke(cli, [*ARGS, "--format", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    start = rows.index(["Contacts by channel"])
    assert rows[start + 1] == ["Channel", "2026-01-01", "2026-02-01", "Total"]
    assert rows[start + 2] == ["Calls to the menu", "<5", "<5", "6"]
    for secret in (*PHONES.values(), BODY, NOTE, STAFF_NAME):
        assert secret not in result.stdout


def test_json_with_a_lower_threshold(env, monkeypatch):
    monkeypatch.setenv("REPORT_MIN_CELL", "2")
    result = CliRunner().invoke(cli, [*ARGS, "--format", "json", "--lang", "km"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["min_cell"] == 2
    contacts = next(t for t in data["tables"] if t["id"] == "contacts")
    assert contacts["rows"][0] == ["ការហៅទៅម៉ឺនុយ", "3", "3", "6"]
    assert contacts["rows"][1][1:] == ["0", "<2", "<2"]  # one missed call: its row total is 1 too


def test_xlsx_needs_a_file_and_writes_one(env, tmp_path):
    assert CliRunner().invoke(cli, [*ARGS, "--format", "xlsx"]).exit_code == 2
    out = tmp_path / "r.xlsx"
    result = CliRunner().invoke(cli, [*ARGS, "--format", "xlsx", "--output", str(out)])
    assert result.exit_code == 0, result.output
    wb = load_workbook(out)
    assert [c.value for c in wb["cases_category"][3]][:1] == ["Trafficking"]


def test_bad_dates_say_what_is_wrong(env):
    result = CliRunner().invoke(cli, ["report", "--from", "2026-13-01", "--to", "2026-02-28"])
    assert result.exit_code == 2 and "is not a date like" in result.output
    result = CliRunner().invoke(cli, ["report", "--from", "2026-03-01", "--to", "2026-02-28"])
    assert result.exit_code == 2 and "ends before it starts" in result.output
