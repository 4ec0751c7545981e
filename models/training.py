"""LightFM training one epoch at a time (`fit_partial`), with early stopping on validation precision@k.

Each epoch is timed and evaluated; the model of the best epoch is kept, and training stops once
`patience` epochs in a row did not beat it. With `threads=1` a seed gives bit-identical models;
with more threads LightFM's lock-free (Hogwild) updates race, so results differ slightly run to run.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import scipy.sparse as sp
from lightfm import LightFM
from tqdm import tqdm

from botify.event_log import finite_number
from models.errors import Diverged
from models.metrics import Metrics, ranking_metrics
from models.recommend import Scorer, top_k

LOSSES = ("warp", "bpr", "warp-kos")


@dataclass(frozen=True)
class LightFMParams:
    """The hyperparameters that tuning searches over."""

    loss: str = "warp"
    no_components: int = 64
    learning_rate: float = 0.05
    max_sampled: int = 10
    user_alpha: float = 1e-6  # a whisper of L2; inside the search space so tuning can start here
    item_alpha: float = 1e-6

    def __post_init__(self) -> None:
        """Reject what LightFM would stop on with a bare assertion, or train with silently (a negative rate)."""
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        for name in ("no_components", "max_sampled"):
            if type(value := getattr(self, name)) is not int or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not finite_number(self.learning_rate) or self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be a finite number > 0, got {self.learning_rate!r}")
        for name in ("user_alpha", "item_alpha"):
            if not finite_number(value := getattr(self, name)) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")

    def as_dict(self) -> dict[str, str | int | float]:
        return asdict(self)

    def model(self, random_state: int) -> LightFM:
        return LightFM(random_state=np.random.RandomState(random_state), **self.as_dict())


@dataclass(frozen=True)
class Evaluator:
    """Precision@k and friends on validation positives, ranking everything but training positives."""

    train: sp.csr_matrix
    valid: sp.csr_matrix
    rows: np.ndarray
    k: int = 10

    def __call__(self, scorer: Scorer) -> Metrics:
        top = top_k(scorer, self.rows, self.k, exclude=self.train)
        return ranking_metrics(top, self.valid[self.rows])

    def split(self, users: int, rng: np.random.Generator) -> tuple[Evaluator, Evaluator]:
        """Two disjoint evaluations: `users` random users (at most half; 0 = half) to watch while choosing
        (every epoch of tuning and early stopping), and the others, held out from every choice, to report on."""
        watch = len(self.rows) // 2 if users <= 0 else min(users, len(self.rows) // 2)
        watched = np.zeros(len(self.rows), dtype=bool)
        watched[rng.choice(len(self.rows), size=watch, replace=False)] = True
        return (
            Evaluator(self.train, self.valid, self.rows[watched], self.k),
            Evaluator(self.train, self.valid, self.rows[~watched], self.k),
        )


@dataclass(frozen=True)
class Epoch:
    """One point of the learning curve."""

    epoch: int
    fit_seconds: float
    metrics: Metrics | None


@dataclass
class Fitted:
    """A trained model, the features it was trained with and how training went."""

    model: LightFM
    item_features: sp.csr_matrix
    curve: list[Epoch] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False

    @property
    def best(self) -> Metrics | None:
        return self.curve[self.best_epoch - 1].metrics if self.curve and self.best_epoch else None

    @property
    def fit_seconds_per_epoch(self) -> float:
        return float(np.mean([e.fit_seconds for e in self.curve])) if self.curve else 0.0

    def scorer(self) -> Scorer:
        return Scorer.from_lightfm(self.model, self.item_features)


def fit(
    params: LightFMParams,
    interactions: sp.csr_matrix,
    item_features: sp.csr_matrix,
    epochs: int,
    threads: int,
    random_state: int,
    evaluator: Evaluator | None = None,
    patience: int | None = None,
    on_epoch: Callable[[Epoch], None] | None = None,
    progress: bool = False,
    desc: str = "fit",
) -> Fitted:
    """Train up to `epochs` epochs; with an evaluator keep the best epoch and stop after `patience` misses."""
    model = params.model(random_state)
    coo = interactions.tocoo()
    fitted = Fitted(model=model, item_features=item_features)
    best_model, best_value, misses = model, -np.inf, 0
    bar = tqdm(range(1, epochs + 1), desc=desc, unit="epoch", disable=not progress, leave=False)
    for epoch in bar:
        start = time.perf_counter()
        try:  # LightFM checks its parameters by summing them: NaN ones would print numpy's warning first
            with np.errstate(invalid="ignore", over="ignore"):
                model.fit_partial(coo, item_features=item_features, epochs=1, num_threads=threads)
        except ValueError as error:  # LightFM's one sign of divergence: "Not all estimated parameters are finite"
            if "finite" not in str(error):
                raise
            raise Diverged(
                f"LightFM diverged in epoch {epoch} of {desc} (its parameters are no longer finite) with "
                f"learning_rate={params.learning_rate:g}, loss={params.loss}: lower the learning rate"
            ) from None
        record = Epoch(epoch=epoch, fit_seconds=time.perf_counter() - start, metrics=None)
        if evaluator is not None:
            record = Epoch(epoch, record.fit_seconds, evaluator(Scorer.from_lightfm(model, item_features)))
            bar.set_postfix(precision=f"{record.metrics.precision:.4f}")
        fitted.curve.append(record)
        if on_epoch is not None:
            on_epoch(record)
        if record.metrics is None:
            fitted.best_epoch, best_model = epoch, model
            continue
        if record.metrics.precision > best_value:
            best_value, misses = record.metrics.precision, 0
            fitted.best_epoch, best_model = epoch, copy.deepcopy(model)
        else:
            misses += 1
            if patience is not None and misses >= patience:
                fitted.stopped_early = epoch < epochs
                break
    fitted.model = best_model
    return fitted
