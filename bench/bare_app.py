"""The baseline: a bare Flask app that answers every POST with a fixed TwiML body.

It does what any Flask app under the same gunicorn settings must do (parse the request, build a
response) and nothing the hotline does (signature check, database, Redis). The body is padded to the
size the hotline answers on the same path, given by BENCH_BARE_SIZES (JSON: {path: bytes}).
"""

from __future__ import annotations

import json
import os

from flask import Flask, Response, request

_HEAD = '<?xml version="1.0" encoding="UTF-8"?><Response><Play>https://hotline.example.org/audio/km/'
_TAIL = ".mp3</Play></Response>"


def body_of_size(size: int) -> bytes:
    pad = max(1, size - len(_HEAD) - len(_TAIL))
    return (_HEAD + "x" * pad + _TAIL).encode()


def create_app() -> Flask:
    sizes: dict[str, int] = json.loads(os.environ.get("BENCH_BARE_SIZES", "{}"))
    bodies = {path: body_of_size(size) for path, size in sizes.items()}
    default = body_of_size(int(os.environ.get("BENCH_BARE_DEFAULT_SIZE", "200")))
    app = Flask(__name__)

    @app.post("/<path:path>")
    def answer(path: str) -> Response:
        request.form.get("CallSid")  # parse the form, as every webhook does
        return Response(bodies.get(request.path, default), status=200, mimetype="text/xml")

    return app
