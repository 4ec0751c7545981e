"""A seeded, believable music world: genres, artists, tracks, a hierarchical taste space, users.

Everything comes from one ``np.random.Generator``, so a seed gives the same world (and the same
bytes on disk) every time. The taste space is built genre -> artist -> track (plus mood), so
same-artist tracks are closest, same-genre tracks close and other genres far; the listeners'
``consume_bias``/``consume_sharpness`` are calibrated to those cosine scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.catalog import group_by_artist, popularity_order


@dataclass(frozen=True)
class Genre:
    name: str
    share: float  # share of artists
    median_duration: int  # seconds
    family: str
    home: tuple[str, ...]  # countries over-represented in the genre


GENRES: tuple[Genre, ...] = (
    Genre("pop", 0.15, 205, "pop", ("US", "GB", "SE")),
    Genre("rock", 0.11, 235, "rock", ("US", "GB")),
    Genre("hip-hop", 0.11, 215, "urban", ("US", "FR", "DE")),
    Genre("electronic", 0.08, 300, "electronic", ("DE", "GB", "FR")),
    Genre("r&b", 0.06, 220, "urban", ("US", "GB")),
    Genre("indie", 0.06, 225, "rock", ("GB", "US", "CA")),
    Genre("latin", 0.05, 210, "world", ("MX", "ES", "CO", "BR")),
    Genre("house", 0.04, 330, "electronic", ("GB", "NL", "DE")),
    Genre("country", 0.04, 200, "folk", ("US", "CA")),
    Genre("metal", 0.04, 290, "rock", ("SE", "FI", "DE", "US")),
    Genre("jazz", 0.03, 330, "jazz", ("US", "FR")),
    Genre("classical", 0.03, 420, "classical", ("DE", "AT", "IT", "RU")),
    Genre("k-pop", 0.03, 200, "pop", ("KR",)),
    Genre("folk", 0.03, 230, "folk", ("GB", "IE", "US")),
    Genre("soul", 0.03, 235, "urban", ("US",)),
    Genre("reggae", 0.02, 240, "world", ("JM", "GB")),
    Genre("techno", 0.02, 390, "electronic", ("DE", "NL")),
    Genre("blues", 0.02, 260, "jazz", ("US",)),
    Genre("punk", 0.02, 160, "rock", ("US", "GB")),
    Genre("ambient", 0.01, 380, "electronic", ("IS", "JP", "DE")),
)

MOODS: tuple[str, ...] = ("happy", "sad", "energetic", "calm", "romantic", "dark", "melancholic", "uplifting")

COUNTRIES: tuple[str, ...] = (
    "US", "GB", "DE", "FR", "SE", "CA", "AU", "BR", "JP", "KR", "ES", "IT",
    "NL", "MX", "CO", "JM", "IE", "FI", "AT", "RU", "IS", "NG", "IN", "PL",
)  # fmt: skip

RELATED_ARTISTS = 20
ARTISTS_PER_SCENE = 30

_SYLLABLES = (
    "ka", "lo", "mi", "ra", "ve", "zo", "an", "el", "ti", "no", "sa", "ri", "da", "mo", "lu", "be", "ny", "xo",
    "qu", "fi", "gra", "shi", "tor", "vin", "mar", "kel", "dre", "sol", "jo", "pe", "ul", "ya", "ros", "ha",
    "cen", "bru", "ix", "wen", "oz", "tal",
)  # fmt: skip
_ADJECTIVES = (
    "Midnight", "Golden", "Broken", "Electric", "Silent", "Wild", "Blue", "Neon", "Velvet", "Lost",
    "Burning", "Hollow", "Crystal", "Distant", "Sweet", "Cold", "Endless", "Secret", "Paper", "Northern",
)  # fmt: skip
_NOUNS = (
    "Echoes", "Heart", "River", "Dreams", "City", "Fire", "Rain", "Lights", "Road", "Summer",
    "Shadows", "Ocean", "Stars", "Garden", "Storm", "Morning", "Memory", "Wings", "Signal", "Horizon",
)  # fmt: skip


@dataclass(frozen=True)
class TasteWeights:
    """Weights of a track embedding's parts; their squares build the expected cosines:
    same artist ~ genre + scene + artist (+ mood), same scene ~ genre + scene (+ mood),
    same genre ~ genre (+ mood), other genres ~ 0. A scene is a hidden sub-genre of about
    ``ARTISTS_PER_SCENE`` artists (fans of one like the others: users' interests chain through it).
    ``mainstream`` pulls popular artists together (and unpopular ones apart from them).

    Calibrated so that taste is learnable from what a model sees: the genre alone (popular tracks of
    the session's genre, a new artist each time) already gives ~3x StickyArtist, while the oracle that
    knows the hidden embedding stays far above (default world)."""

    genre: float = 0.6
    scene: float = 0.45
    artist: float = 0.4
    mood: float = 0.35
    track: float = 0.3
    mainstream: float = 0.3
    family_mix: float = 0.5  # how much of a genre's direction its family of genres shares


@dataclass(frozen=True)
class WorldConfig:
    """Sizes and the listeners' calibration; ``artists=None`` means one artist per 10 tracks.

    ``bias_range`` is the course's U(0.1, 0.6) moved to U(0.3, 0.7) for this taste space's cosines. With the
    course's range (default world, 400 sessions) Random plays 1.4 per session, StickyArtist only 1.7x that,
    and the oracle's sessions run to 130 steps; with this one (2,000 sessions) Random ~0.5, TopPop ~0.7,
    StickyArtist ~2.2 and the oracle ~50 per session.
    """

    tracks: int = 50_000
    artists: int | None = None
    users: int = 10_000
    dim: int = 32
    bias_range: tuple[float, float] = (0.3, 0.7)
    sharpness_range: tuple[float, float] = (4.0, 15.0)
    openness_range: tuple[float, float] = (0.25, 0.75)
    taste: TasteWeights = TasteWeights()

    @property
    def n_artists(self) -> int:
        return self.artists if self.artists is not None else max(1, self.tracks // 10)


PRESETS: dict[str, WorldConfig] = {
    "default": WorldConfig(),
    "small": WorldConfig(tracks=5_000, users=1_000),
}


@dataclass(frozen=True)
class GeneratedWorld:
    tracks: list[dict[str, Any]]  # tracks.json records, by track id
    embeddings: np.ndarray  # float32 [n_tracks, dim]
    users: list[dict[str, Any]]  # users.json records
    top_tracks: np.ndarray  # track ids, most popular first


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _directions(rng: np.random.Generator, count: int, dim: int) -> np.ndarray:
    """``count`` unit directions, mutually orthogonal while the dimension allows it."""
    if count <= dim:
        q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
        return q[:, :count].T.copy()
    return _unit(rng.standard_normal((count, dim)))


def _shared_directions(
    rng: np.random.Generator, dim: int, family_mix: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Genre, mood and mainstream directions."""
    base = _directions(rng, len(GENRES) + len(MOODS) + 1, dim)
    own, moods, mainstream = base[: len(GENRES)], base[len(GENRES) : -1], base[-1]
    families = sorted({g.family for g in GENRES})
    family_of = np.array([families.index(g.family) for g in GENRES])
    family_mean = np.stack([own[family_of == f].mean(axis=0) for f in range(len(families))])
    return _unit(own + family_mix * family_mean[family_of]), moods, mainstream


def _word(rng: np.random.Generator) -> str:
    return "".join(_SYLLABLES[p] for p in rng.choice(len(_SYLLABLES), size=int(rng.integers(2, 4)))).capitalize()


def _name(rng: np.random.Generator, taken: set[str]) -> str:
    """A made-up artist name, unique in the catalog (drawn again on a clash)."""
    while True:
        name = _word(rng)
        if rng.random() < 0.5:
            name = f"{name} {_word(rng)}"
        elif rng.random() < 0.2:
            name = f"The {name}s"
        if name not in taken:
            taken.add(name)
            return name


@dataclass(frozen=True)
class _Artists:
    genre: np.ndarray
    fans: np.ndarray
    country: np.ndarray
    names: list[str]
    vectors: np.ndarray
    mood_probs: np.ndarray
    first_year: np.ndarray


def _make_artists(rng: np.random.Generator, n: int, dim: int, genre_moods: np.ndarray) -> _Artists:
    shares = np.array([g.share for g in GENRES])
    genre = rng.choice(len(GENRES), size=n, p=shares / shares.sum())
    fans = np.maximum(1, rng.lognormal(mean=8.0, sigma=1.8, size=n)).astype(np.int64)
    country = np.empty(n, dtype=np.int64)
    for g, spec in enumerate(GENRES):
        weights = np.ones(len(COUNTRIES))
        weights[[COUNTRIES.index(c) for c in spec.home]] += 12.0 / len(spec.home)
        members = np.flatnonzero(genre == g)
        country[members] = rng.choice(len(COUNTRIES), size=members.size, p=weights / weights.sum())
    taken: set[str] = set()
    names = [_name(rng, taken) for _ in range(n)]
    vectors = _unit(rng.standard_normal((n, dim)))
    mood_probs = np.stack([rng.dirichlet(genre_moods[g] * 3.0) for g in genre])
    first_year = rng.integers(1960, 2024, size=n)
    return _Artists(genre, fans, country, names, vectors, mood_probs, first_year)


def _tracks_per_artist(rng: np.random.Generator, n_tracks: int, fans: np.ndarray) -> np.ndarray:
    """At least one track each; a few to dozens, more for artists with more fans."""
    n = fans.shape[0]
    if n_tracks < n:
        raise ValueError(f"need at least one track per artist ({n_tracks} tracks, {n} artists)")
    weights = rng.lognormal(0.0, 0.8, size=n) * fans.astype(np.float64) ** 0.15
    return 1 + rng.multinomial(n_tracks - n, weights / weights.sum())


def _scenes(rng: np.random.Generator, genre: np.ndarray) -> np.ndarray:
    """A scene per artist: sub-genres of about ``ARTISTS_PER_SCENE`` artists, numbered across genres."""
    scene = np.empty(genre.shape[0], dtype=np.int64)
    first = 0
    for g in range(len(GENRES)):
        members = np.flatnonzero(genre == g)
        count = max(1, round(members.size / ARTISTS_PER_SCENE))
        scene[members] = first + rng.integers(count, size=members.size)
        first += count
    return scene


def _related_artists(centroids: np.ndarray) -> np.ndarray:
    """For each artist, the ``RELATED_ARTISTS`` most similar other artists."""
    n = centroids.shape[0]
    k = min(RELATED_ARTISTS, n - 1)
    related = np.empty((n, k), dtype=np.int64)
    if k == 0:
        return related
    for start in range(0, n, 1024):
        block = centroids[start : start + 1024] @ centroids.T
        rows = np.arange(block.shape[0])
        block[rows, rows + start] = -np.inf
        related[start : start + 1024] = np.argpartition(block, -k, axis=1)[:, -k:]
    return np.sort(related, axis=1)


def _weighted_pick(rng: np.random.Generator, cumulative: np.ndarray) -> int:
    return int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))


def _make_users(
    rng: np.random.Generator,
    config: WorldConfig,
    track_popularity: np.ndarray,
    artist_of: np.ndarray,
    artist_fans: np.ndarray,
    related: np.ndarray,
) -> list[dict[str, Any]]:
    """Interests chained through related artists: with prob. ``openness`` a user jumps anywhere."""
    order, bounds = group_by_artist(artist_of, artist_fans.shape[0])
    cumulative_all = np.cumsum(track_popularity)
    n = config.users
    counts = 1 + rng.binomial(5, 0.5, size=n)
    openness = rng.uniform(*config.openness_range, size=n)
    bias = rng.uniform(*config.bias_range, size=n)
    sharpness = rng.uniform(*config.sharpness_range, size=n)
    users = []
    for user in range(n):
        interests: list[int] = []
        current = -1
        for _ in range(counts[user]):
            if current < 0 or related.shape[1] == 0:
                track = _weighted_pick(rng, cumulative_all)
                current = int(artist_of[track])
            else:
                candidates = related[current]
                current = int(candidates[_weighted_pick(rng, np.cumsum(artist_fans[candidates]))])
                own = order[bounds[current] : bounds[current + 1]]
                track = int(own[_weighted_pick(rng, np.cumsum(track_popularity[own]))])
            interests.append(track)
            if rng.random() < openness[user]:
                current = -1
        users.append(
            {
                "user": user,
                "interests": interests,
                "consume_bias": round(float(bias[user]), 4),
                "consume_sharpness": round(float(sharpness[user]), 4),
            }
        )
    return users


def generate_world(config: WorldConfig, rng: np.random.Generator) -> GeneratedWorld:
    """Build the catalog, the taste space and the users from one generator."""
    taste = config.taste
    genre_vectors, mood_vectors, mainstream = _shared_directions(rng, config.dim, taste.family_mix)
    genre_moods = rng.dirichlet(np.full(len(MOODS), 0.8), size=len(GENRES))
    artists = _make_artists(rng, config.n_artists, config.dim, genre_moods)
    per_artist = _tracks_per_artist(rng, config.tracks, artists.fans)
    artist_of = np.repeat(np.arange(config.n_artists), per_artist)  # tracks in artist order for now
    n = config.tracks

    # Track i of an artist is its i-th most popular: Zipf-like within the artist, scaled by fans.
    rank = np.arange(n) - np.repeat(np.cumsum(per_artist) - per_artist, per_artist) + 1
    popularity = artists.fans[artist_of] / rank**0.9 * rng.lognormal(0.0, 0.35, size=n)
    cumulative_moods = np.cumsum(artists.mood_probs[artist_of], axis=1)
    mood = np.minimum((cumulative_moods < rng.random((n, 1))).sum(axis=1), len(MOODS) - 1)
    genre = artists.genre[artist_of]
    medians = np.array([g.median_duration for g in GENRES], dtype=np.float64)
    duration = np.clip(rng.lognormal(np.log(medians[genre]), 0.22), 60, 1800).round().astype(np.int64)
    year = np.minimum(2025, artists.first_year[artist_of] + rng.geometric(0.15, size=n) - 1)
    titles = [
        f"{_ADJECTIVES[a]} {_NOUNS[b]}"
        for a, b in zip(rng.integers(0, len(_ADJECTIVES), n), rng.integers(0, len(_NOUNS), n), strict=True)
    ]
    # An artist's place in the taste space: its genre, its own direction, how mainstream it is.
    fame = 2.0 * np.argsort(np.argsort(artists.fans)) / max(1, config.n_artists - 1) - 1.0
    scene = _scenes(rng, artists.genre)
    scene_vectors = _unit(rng.standard_normal((int(scene.max()) + 1, config.dim)))
    centroids = (
        taste.genre * genre_vectors[artists.genre]
        + taste.scene * scene_vectors[scene]
        + taste.artist * artists.vectors
        + taste.mainstream * fame[:, None] * mainstream
    )
    embeddings = _unit(
        centroids[artist_of]
        + taste.mood * mood_vectors[mood]
        + taste.track * _unit(rng.standard_normal((n, config.dim)))
    ).astype(np.float32)

    # Shuffle ids so a track id tells nothing about its artist.
    new_id = rng.permutation(n)
    by_id = np.argsort(new_id)
    popularity = np.round(popularity[by_id], 3)
    artist_of = artist_of[by_id]
    tracks = [
        {
            "track": int(t),
            "artist": artists.names[artist_of[t]],
            "title": titles[by_id[t]],
            "genre": GENRES[genre[by_id[t]]].name,
            "duration": int(duration[by_id[t]]),
            "popularity": float(popularity[t]),
            "year": int(year[by_id[t]]),
            "mood": MOODS[mood[by_id[t]]],
            "country": COUNTRIES[artists.country[artist_of[t]]],
        }
        for t in range(n)
    ]
    related = _related_artists(_unit(centroids))
    users = _make_users(rng, config, popularity, artist_of, artists.fans, related)
    return GeneratedWorld(tracks, embeddings[by_id], users, popularity_order(popularity))
