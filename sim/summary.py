"""Per-session results and their summary: mean listen time and steps per session, with standard errors."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from itertools import groupby
from typing import Any


@dataclass(frozen=True)
class EpisodeResult:
    agent: str
    day: int
    episode: int
    user: int
    time: float  # total listen time of the session's recommendations
    steps: int  # recommendations in the session
    truncated: bool


def mean_and_se(values: list[float]) -> tuple[float, float]:
    """Mean and its standard error (sample standard deviation / sqrt(n); 0 for one value)."""
    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return mean, 0.0
    variance = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(variance / n)


@dataclass(frozen=True)
class Summary:
    agent: str
    day: int
    sessions: int
    mean_time: float
    time_se: float
    mean_steps: float
    steps_se: float
    truncated: int

    def to_dict(self) -> dict[str, Any]:
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in asdict(self).items()}


def summarize(results: list[EpisodeResult]) -> list[Summary]:
    """One row per (agent, day), in first-seen agent order and day order."""
    agent_order: dict[str, int] = {}
    for r in results:
        agent_order.setdefault(r.agent, len(agent_order))
    ordered = sorted(results, key=lambda r: (agent_order[r.agent], r.day, r.episode))
    rows = []
    for (agent, day), group in groupby(ordered, key=lambda r: (r.agent, r.day)):
        episodes = list(group)
        mean_time, time_se = mean_and_se([r.time for r in episodes])
        mean_steps, steps_se = mean_and_se([float(r.steps) for r in episodes])
        truncated = sum(r.truncated for r in episodes)
        rows.append(Summary(agent, day, len(episodes), mean_time, time_se, mean_steps, steps_se, truncated))
    return rows


def format_table(rows: list[Summary]) -> str:
    """A Markdown table, ready for a README."""
    lines = [
        "| agent | day | sessions | time / session | steps / session | truncated |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.agent} | {r.day} | {r.sessions} | {r.mean_time:.3f} ± {r.time_se:.3f} "
            f"| {r.mean_steps:.2f} ± {r.steps_se:.2f} | {r.truncated} |"
        )
    return "\n".join(lines)
