"""Export a trained model for botify: recommendations JSONL plus the item vectors beside it.

`NAME.jsonl`: one line per user, `{"user": <id>, "tracks": [<track id>, ...]}`, best first, at most
k tracks, never a track in that user's row of `exclude` (the pipeline passes every positive the user has:
validation ones, and those on tracks the k-core filter dropped).
`NAME.npy`: float32 array `[n_catalog_tracks, d]`; row i is catalog track i's LightFM representation
computed with the item features the model was trained with (the sum of its identity, genre, artist,
popularity and duration embeddings). The id map is the row index itself: row i = track i. The
service re-ranks a user's candidates by how close their vectors are to the current session's tracks.
`NAME.catalog.json`: `{"catalog": "<fingerprint>"}`, the fingerprint of the world trained on
(`botify.data_files.catalog_fingerprint`: its track ids with their artists); `botify load` refuses the set
against any other catalog.
The files (of every model exported together, and of the rest of a run given the same `AtomicFiles`) are written to
temporary names and renamed only when all are complete.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from tqdm import tqdm

from botify.data_files import fingerprint_json, fingerprint_path
from models.atomic import AtomicFiles, joined
from models.recommend import Scorer, top_k_blocks


@dataclass(frozen=True)
class Exported:
    """Where an export went and what it cost."""

    recommendations: Path
    vectors: Path
    catalog: Path
    users: int
    seconds: float


def item_vectors(scorer: Scorer) -> np.ndarray:
    """The `.npy` payload: float32 [n_tracks, d], row i = track i."""
    return np.ascontiguousarray(scorer.item_vectors, dtype=np.float32)


def export(
    out_dir: Path,
    name: str,
    scorer: Scorer,
    users: np.ndarray,
    k: int,
    exclude: sp.csr_matrix | None,
    catalog: str,
    progress: bool = False,
) -> Exported:
    """Write `out_dir/NAME.jsonl` (top-k per user; `users[i]` is scorer row i), `out_dir/NAME.npy` and
    `out_dir/NAME.catalog.json` (`catalog`: the fingerprint of the world trained on)."""
    return export_models(out_dir, {name: scorer}, users, k, exclude, catalog, progress)[name]


def export_models(
    out_dir: Path,
    scorers: Mapping[str, Scorer],
    users: np.ndarray,
    k: int,
    exclude: sp.csr_matrix | None,
    catalog: str,
    progress: bool = False,
    files: AtomicFiles | None = None,
) -> dict[str, Exported]:
    """`export` each model NAME of `scorers`; every file is renamed into place only once all are written (with
    `files`: when they are), so a run that fails leaves the earlier exports as they were (never one model's new files
    beside another's old ones)."""
    exported: dict[str, Exported] = {}
    with joined(files) as into:
        for name, scorer in scorers.items():
            start = time.perf_counter()
            jsonl, npy = out_dir / f"{name}.jsonl", out_dir / f"{name}.npy"
            stamp = fingerprint_path(jsonl)
            tmp_jsonl, tmp_npy, tmp_stamp = (into.path(path) for path in (jsonl, npy, stamp))
            _write_lists(tmp_jsonl, name, scorer, users, k, exclude, progress)
            with tmp_npy.open("wb") as f:
                np.save(f, item_vectors(scorer))
            tmp_stamp.write_text(fingerprint_json(catalog), encoding="utf-8")
            seconds = time.perf_counter() - start
            exported[name] = Exported(jsonl, npy, stamp, users=len(users), seconds=seconds)
    return exported


def _write_lists(
    path: Path, name: str, scorer: Scorer, users: np.ndarray, k: int, exclude: sp.csr_matrix | None, progress: bool
) -> None:
    """The JSONL of top-k lists, one line per user, without the tracks `exclude` rules out."""
    rows = np.arange(len(users))
    with (
        path.open("w", encoding="utf-8") as f,
        tqdm(total=len(rows), desc=f"export {name}", unit="user", disable=not progress, leave=False) as bar,
    ):
        for chunk, top, scores in top_k_blocks(scorer, rows, k, exclude):
            allowed = np.isfinite(scores)
            for user, tracks, ok in zip(users[chunk].tolist(), top.tolist(), allowed, strict=True):
                kept = tracks if ok.all() else [t for t, good in zip(tracks, ok, strict=True) if good]
                f.write(json.dumps({"user": user, "tracks": kept}) + "\n")
            bar.update(len(chunk))
