"""The framework's ceiling: a minimal Flask app answering the same POST with a JSON body.

Served by the same gunicorn settings as botify (`-c python:botify.gunicorn_conf`), it is what
Flask + gunicorn cost with no work behind them; the serving benchmark reports botify as a ratio to it.
"""

from __future__ import annotations

from flask import Flask, request

app = Flask("hello")


@app.get("/health")
def health() -> dict:
    return {"status": "ok"}


@app.post("/next/<int:user>")
def next_track(user: int) -> dict:
    body = request.get_json(force=True)
    return {"user": user, "track": body["track"]}
