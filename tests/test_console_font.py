"""The Khmer web font ships with the app: served locally, declared with font-display: swap, linked
from every console page and the simulator (the browser test checks that it actually loads)."""

from __future__ import annotations

import re

from tests.test_console import login, make_staff


def test_the_khmer_font_is_served_from_the_app_and_declared_with_swap(client) -> None:
    css = client.get("/static/fonts/khmer.css")
    assert css.status_code == 200 and css.mimetype == "text/css"
    text = css.get_data(as_text=True)
    faces = re.findall(r"@font-face\s*{[^}]*}", text)
    assert len(faces) == 2
    for face in faces:
        assert 'font-family: "Noto Sans Khmer"' in face and "font-display: swap" in face
        assert "U+1780-17FF" in face and "//" not in face.split("src:")[1].split(";")[0]  # no CDN
    for name in re.findall(r"url\(([^)]+)\)", text):
        font = client.get(f"/static/fonts/{name}")
        assert font.status_code == 200 and font.mimetype == "font/woff2"
        assert font.data[:4] == b"wOF2" and len(font.data) > 10_000
    assert client.get("/static/fonts/OFL-Noto-Sans-Khmer.txt").status_code == 200


def test_console_pages_and_the_simulator_link_the_font_and_put_it_first_for_khmer(client, db) -> None:
    assert "/static/fonts/khmer.css" in client.get("/staff/login").get_data(as_text=True)
    make_staff(db)
    login(client)
    assert "/static/fonts/khmer.css" in client.get("/staff/").get_data(as_text=True)
    assert "/static/fonts/khmer.css" in client.get("/simulator").get_data(as_text=True)
    staff_css = client.get("/staff/static/staff.css").get_data(as_text=True)
    assert re.search(r'body {[^}]*font: 16px/1.5 "Noto Sans Khmer", system-ui', staff_css)
