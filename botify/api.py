"""HTTP resources (the course's protocol) and their input validation."""

from __future__ import annotations

import contextlib
import json
import time
from typing import TYPE_CHECKING, NoReturn

import flask
import orjson
from flask import Response, current_app, request
from flask_restful import Resource, abort
from werkzeug.exceptions import HTTPException

from botify.event_log import INT64_MAX, EventLogError
from botify.registry import DEFAULT_RECOMMENDER, experiment_arms
from botify.store import StoreUnavailable

if TYPE_CHECKING:
    from botify.app import Services


def services() -> Services:
    """What the app was built with (`create_app`): store, experiment, recommenders, event log."""
    return current_app.extensions["botify"]


def output_json(data: object, code: int, headers: dict | None = None) -> Response:
    """flask-restful's JSON representation (answers and errors), serialized by orjson. The listen resources
    return its Response themselves: flask-restful passes a Response through without negotiating `Accept`."""
    response = current_app.response_class(orjson.dumps(data), status=code, mimetype="application/json")
    response.headers.extend(headers or {})
    return response


def unavailable(message: str) -> NoReturn:
    """A 503 with its message, as flask-restful's `abort` answers, without the traceback it logs for every 5xx
    (an expected state, such as Redis away, is not a server error worth a stack per request)."""
    flask.abort(output_json({"message": message}, 503, {"Retry-After": "1"}))


def refuse_while_the_log_fails(served: Services) -> None:
    """While the event log is known to fail, a listen is refused before it is recorded anywhere, unless the log's
    probe (`EventLog.healthy`) takes a write again: a client's retries of a listen answered 503 would otherwise each
    count once more in its Redis session."""
    if served.events.failing is not None and not served.events.healthy():
        unavailable(f"the event log cannot take the listen ({served.events.failing}); try again shortly")


def log_or_unavailable(served: Services, *event: object, **fields: object) -> None:
    """Log the event before answering; a listen the log cannot take is not answered as served (503)."""
    try:
        served.log_event(*event, **fields)
    except EventLogError as error:
        unavailable(f"{error}; try again shortly")


def read_body() -> bytes:
    """The request's body. A body the server cannot read is the client's error, a 400: gunicorn refuses chunked
    framing (a bad chunk size, extension, terminator or trailer) only when the app reads the body, with its own
    exceptions, which would otherwise escape as a 500 with a traceback."""
    try:
        return request.get_data(cache=True)
    except HTTPException:  # werkzeug's own (a body over the limit, a client gone mid-body): already a 4xx
        raise
    except Exception as error:  # noqa: BLE001 (the server's parser errors: gunicorn's are not OSError)
        abort(400, message=f"the body could not be read: {error}")


def parse_listen(user: int) -> tuple[int, float]:
    """The body `{"track": int, "time": float in [0, 1]}` of /next and /last, or a 4xx with the reason."""
    if user > INT64_MAX:  # the largest id the event log's readers take (int64), as `botify load` checks too
        abort(400, message=f"user id must be at most {INT64_MAX}")
    limit = current_app.config["BOTIFY_SETTINGS"].max_body_bytes
    declared = request.content_length
    if declared is not None and declared > limit:
        abort(413, message=f"body too large: at most {limit} bytes")
    raw = read_body()
    if declared is None and len(raw) > limit:  # chunked: the read stops one byte past the limit
        abort(413, message=f"body too large: at most {limit} bytes")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes: not a listen either
        body = None
    if not isinstance(body, dict):
        abort(400, message='body must be a JSON object like {"track": 1, "time": 0.5}')
    track, listened = body.get("track"), body.get("time")
    if type(track) is not int:
        abort(400, message="'track' must be an integer track id")
    if type(listened) not in (int, float) or not 0.0 <= listened <= 1.0:  # NaN compares false; no float() of an int
        abort(400, message="'time' must be a number in [0, 1]: the fraction of the track listened")
    catalog = services().known_catalog()
    if catalog is None:
        unavailable("no catalog loaded yet (see /ready): tracks cannot be checked; try again shortly")
    if track not in catalog:
        abort(404, message=f"unknown track {track}")
    return track, float(listened)


class Hello(Resource):
    def get(self):
        return {"status": "alive", "message": "welcome to botify, the music recommender"}


class Health(Resource):
    def get(self):
        return {"status": "ok"}


class Ready(Resource):
    def get(self):
        state = services().readiness()
        return state, 200 if state["ready"] else 503


class Track(Resource):
    def get(self, track: int):
        served = services()
        try:
            data = served.store.guard.call(served.store.track, track)
        except StoreUnavailable:
            unavailable("the track store is unreachable; try again shortly")
        except LookupError:
            unavailable("no catalog loaded (see /ready): tracks cannot be looked up; try again shortly")
        if data is None:
            abort(404, message=f"unknown track {track}")
        return data


class NextTrack(Resource):
    def post(self, user: int):
        started = time.perf_counter()
        prev_track, prev_time = parse_listen(user)
        served = services()
        refuse_while_the_log_fails(served)
        arms = experiment_arms(user)
        arm = arms.get(served.experiment.name)
        name = served.experiment.recommender_for(arm) if arm else DEFAULT_RECOMMENDER
        track = served.recommend(name, user, prev_track, prev_time)
        log_or_unavailable(served, "next", user, prev_track, prev_time, started, arms, recommendation=track)
        return output_json({"user": user, "track": track}, 200)


class LastTrack(Resource):
    def post(self, user: int):
        started = time.perf_counter()
        prev_track, prev_time = parse_listen(user)
        served = services()
        refuse_while_the_log_fails(served)
        with contextlib.suppress(StoreUnavailable):  # unreachable: deleted once Redis answers (or it expires)
            served.store.end_session(user)
        log_or_unavailable(served, "last", user, prev_track, prev_time, started, experiment_arms(user))
        return output_json({"user": user}, 200)
