"""The application factory: `create_app(settings)` wires Redis, recommenders and the event log."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np
import redis
from flask import Flask, request
from flask_restful import Api
from werkzeug.exceptions import BadHost, HTTPException, NotFound
from werkzeug.routing import IntegerConverter

from botify import api
from botify.catalog import Catalog
from botify.connection import redis_client
from botify.event_log import INT64_MAX, EventLog
from botify.experiments import Experiment
from botify.recommenders.base import Recommender
from botify.recommenders.top_pop import TOP_K
from botify.registry import EXPERIMENTS, RECOMMENDATION_SETS, RECOMMENDERS, check_settings
from botify.settings import Settings
from botify.store import REDIS_DOWN, REDIS_REFUSED, Store, StoreUnavailable
from botify.wiring import build_recommenders


@dataclass
class Services:
    """What the resources use: one per process."""

    store: Store
    experiment: Experiment
    recommenders: dict[str, Recommender]
    events: EventLog
    rng: np.random.Generator

    def known_catalog(self) -> Catalog | None:
        """The live catalog; the last one this process saw while Redis is unreachable or has lost it."""
        try:
            return self.store.serving_catalog()
        except StoreUnavailable:
            return None

    def recommend(self, name: str, user: int, prev_track: int, prev_time: float) -> int:
        """Recommender `name`'s answer. Those that need only the catalog serve through a Redis outage from the
        one in memory; while a list-based one cannot reach Redis, a popular track remembered in process."""
        recommender = self.recommenders[name].recommend_next
        try:
            if RECOMMENDERS[name].recommendation_set is None:
                return recommender(user, prev_track, prev_time)
            return self.store.guard.call(recommender, user, prev_track, prev_time)
        except (StoreUnavailable, LookupError):
            return self.outage_pick(prev_track)

    def outage_pick(self, prev_track: int) -> int:
        """Serving without Redis: one of TopPop's tracks (but the previous one), from the catalog in process."""
        catalog = self.store.cached_catalog()
        top = catalog.top_tracks[:TOP_K] if catalog is not None else np.empty(0, dtype=np.int32)
        options = top[top != prev_track]
        return int(self.rng.choice(options)) if len(options) else prev_track

    def readiness(self) -> dict:
        names = RECOMMENDATION_SETS
        try:
            redis_up = self.store.ping()
            if redis_up:
                self.store.guard.resume()
            catalog = redis_up and self.store.catalog_version() is not None
            stale = self.store.stale_sets(names) if redis_up else []  # made for another catalog than the live one
            sets = {name: redis_up and name not in stale and self.store.has_set(name) for name in names}
        except (*REDIS_DOWN, redis.ResponseError) as error:  # unreachable, or refusing (a replica's MASTERDOWN)
            if isinstance(error, REDIS_REFUSED):
                self.store.guard.refused(error)  # logged: why Redis counts as down
            redis_up, catalog, stale, sets = False, False, [], dict.fromkeys(names, False)
        event_log = self.events.healthy()
        return {"ready": bool(redis_up and catalog and event_log), "redis": redis_up, "catalog": bool(catalog),
                "event_log": event_log, "recommendation_sets": sets, "stale_sets": stale,
                "experiment": self.experiment.name}  # fmt: skip

    def log_event(
        self, message: str, user: int, track: int, listened: float, started: float, arms: dict,
        recommendation: int | None = None,
    ) -> None:  # fmt: skip
        event = {"message": message, "timestamp": int(time.time() * 1000), "user": user, "track": track,
                 "time": listened, "latency": time.perf_counter() - started}  # fmt: skip
        if recommendation is not None:
            event["recommendation"] = recommendation
        event["experiment"] = self.experiment.name  # which experiment routed it: `ab` analyses only its events
        event["experiments"] = arms
        self.events.write(event)


class AsciiIntegerConverter(IntegerConverter):
    """`<int:...>` in ASCII digits only. werkzeug's matches any Unicode digit (its regex is `\\d+`):
    `/next/%D9%A1%D9%A2` (Arabic-Indic 12) was served and logged as user 12, `/track/%EF%BC%95` (a fullwidth 5)
    answered track 5."""

    regex = r"[0-9]+"


# The routes ending in an id, and what the id is: a path with no such id is not found, and says what it takes.
ID_ROUTES = {"next": "user", "last": "user", "track": "track"}


class BotifyApi(Api):
    """flask-restful's Api, whose error routing answers every error in JSON. To decide who answers an error,
    flask-restful matches the request's URL again, and that match can raise in turn: for a Host header that is no
    host name (a DNS label over 63 characters, an empty one: werkzeug's BadHost), and for a path werkzeug redirects
    (`DELETE /next//4`: the method is refused, and matching the URL for an allowed method answers a redirect to
    `/next/4`). That second exception escaped Flask's error handling: a 500 with a traceback, on any path."""

    def _should_use_fr_error_handler(self) -> bool:
        try:
            return super()._should_use_fr_error_handler()
        except HTTPException:  # the URL cannot be matched again: answer the original error as the API does
            return True

    def handle_error(self, e: Exception):
        if isinstance(e, BadHost):
            e.data = {"message": "bad Host header: not a host name"}
        elif isinstance(e, NotFound) and not hasattr(e, "data"):  # no route matched (not an unknown track)
            kind = ID_ROUTES.get(request.path.split("/")[1]) if request.path.count("/") == 2 else None
            if kind is not None:
                e.data = {"message": f"not found: a {kind} id is a whole number from 0 to {INT64_MAX}"}
        return super().handle_error(e)


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    check_settings(settings)
    app = Flask("botify", static_folder=None)  # no `/static/<path>` route, whose errors would be Flask's HTML pages
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes + 1  # a chunked body read one byte past the limit
    app.config["BOTIFY_SETTINGS"] = settings
    app.url_map.converters["int"] = AsciiIntegerConverter
    # `/next//1` is no route (a JSON 404), not werkzeug's redirect: an HTML 308 to a Location made of the Host header
    app.url_map.merge_slashes = False
    store = Store(redis_client(settings), settings.session_ttl)
    # The random picks' stream: one per worker, the same for the same worker of every run (one worker answering a
    # sequential client, as the tests' simulations, draws the same picks for the same requests); from the OS when
    # BOTIFY_SEED=random.
    rng = np.random.default_rng(
        None if settings.seed is None else [settings.seed, settings.worker_number or os.getpid()]
    )
    services = Services(
        store=store,
        experiment=EXPERIMENTS[settings.experiment],
        recommenders=build_recommenders(store, rng, settings.fallback),
        events=EventLog(settings.log_dir, settings.log_max_bytes, settings.log_backups),
        rng=rng,
    )
    services.known_catalog()  # warm the catalog cache and the outage fallback when Redis is there
    app.extensions["botify"] = services

    rest = BotifyApi(app, catch_all_404s=True)
    rest.representations = {"application/json": api.output_json}
    rest.add_resource(api.Hello, "/")
    rest.add_resource(api.Health, "/health")
    rest.add_resource(api.Ready, "/ready")
    rest.add_resource(api.Track, f"/track/<int(max={INT64_MAX}):track>")  # beyond: as /track/-1, no such route
    rest.add_resource(api.NextTrack, "/next/<int:user>")
    rest.add_resource(api.LastTrack, "/last/<int:user>")
    return app
