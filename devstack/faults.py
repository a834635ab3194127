"""The fault model: which ways the cloud may misbehave in a devstack run, and how often.

A `FaultPlan` holds one rate (a probability per opportunity) for each fault kind, a
seeded random generator, and counters of the faults it injected. The places where a
fault can happen ask it `should(kind)`:

  the event pump (devstack/pump.py)        dup_s3, dup_sqs, dup_event, reorder
  the app's AWS clients (clientfaults.py)  die_after_submit, die_after_record,
                                           die_completion, ddb_conflict
  the Data API emulator (redshift/)        throttle, server_error, serializable, pg_restart,
                                           lose_event, delay_event

Chosen per run: `python -m devstack up --faults dup_s3=0.05,throttle=0.1`, the
`DEVSTACK_FAULTS` environment variable (with `DEVSTACK_FAULTS_SEED`), or
`StackOptions(faults=FaultPlan.parse(...))`. `all=0.05` sets every kind. The seed
fixes the sequence of draws; thread timing still varies from run to run.
"""

from __future__ import annotations

import collections
import contextlib
import math
import os
import random
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

FAULTS: dict[str, str] = {
    "dup_s3": "an S3 notification delivered twice",
    "dup_sqs": "a job or flush message delivered twice",
    "dup_event": "an EventBridge event (completion, DMS) delivered twice",
    "reorder": "a landing message or EventBridge event held back so later ones overtake it",
    "lose_event": "a Data API completion event never delivered",
    "delay_event": "a Data API completion event delivered 1-10 s late",
    "throttle": "a Data API call answered with ThrottlingException",
    "server_error": "a Data API call answered with HTTP 500",
    "serializable": "a transaction batch failing with 1023 serializable isolation violation",
    "pg_restart": "a statement's PostgreSQL backend terminated during one of its COPYs (a restart mid-COPY)",
    "die_after_submit": "the worker Lambda dying after submitting a statement, before recording it",
    "die_after_record": "the worker Lambda dying right after recording a submission",
    "die_completion": "the completion Lambda dying after finishing a job, before the rest of its update",
    "ddb_conflict": "a conditional ledger write rejected with a DynamoDB transaction conflict",
}
ALL = "all"
COVER_BY = 3  # with cover on, a kind not yet injected fires at this chance at the latest
ENV_VAR = "DEVSTACK_FAULTS"
SEED_ENV_VAR = "DEVSTACK_FAULTS_SEED"


class FaultSpecError(ValueError):
    """A fault list that cannot be parsed; the message names the bad entry."""


class LambdaDied(BaseException):
    """An injected crash of a Lambda invocation (timeout, OOM, a killed sandbox).

    A BaseException so the app's own `except Exception` blocks cannot catch it: a dead
    process runs no handler code. The pump treats it like a crashed invocation: the SQS
    message stays as received and comes back after its visibility timeout; an async
    EventBridge invocation is retried twice."""


@dataclass
class FaultPlan:
    rates: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    enabled: bool = True  # switched off to watch the system recover
    cover: bool = False   # every kind with a rate fires by its COVER_BY-th chance at the latest (short runs)

    def __post_init__(self) -> None:
        for kind, rate in self.rates.items():
            _check(kind, rate)
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self._injected: collections.Counter[str] = collections.Counter()
        self._chances: collections.Counter[str] = collections.Counter()

    # ------------------------------------------------------------- building
    @classmethod
    def parse(cls, text: str, *, seed: int = 0) -> "FaultPlan":
        """`"dup_s3=0.05, throttle=0.1"`; `"all=0.05,throttle=0"`; "" or "none" is no faults."""
        rates: dict[str, float] = {}
        spec = (text or "").strip()
        if spec.lower() in ("", "none"):
            return cls({}, seed=seed)
        for entry in spec.split(","):
            entry = entry.strip()
            if not entry:
                continue
            name, sep, value = entry.partition("=")
            name = name.strip().lower()
            if not sep:
                raise FaultSpecError(f"fault entry {entry!r} needs a rate, like {name or 'throttle'}=0.05")
            if name != ALL and name not in FAULTS:
                raise FaultSpecError(f"unknown fault {name!r}; known faults: {ALL}, {', '.join(FAULTS)}")
            try:
                rate = float(value)
            except ValueError:
                raise FaultSpecError(f"fault {name!r}: rate {value.strip()!r} is not a number") from None
            if not 0.0 <= rate <= 1.0:  # also rejects nan
                raise FaultSpecError(f"fault {name!r}: rate {rate} is outside 0..1 (it is a probability)")
            if name == ALL:
                rates.update({kind: rate for kind in FAULTS})
            else:
                rates[name] = rate
        return cls({k: v for k, v in rates.items() if v > 0}, seed=seed)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "FaultPlan":
        env = os.environ if env is None else env
        raw_seed = env.get(SEED_ENV_VAR, "0") or "0"
        try:
            seed = int(raw_seed)
        except ValueError:
            raise FaultSpecError(f"{SEED_ENV_VAR}={raw_seed!r} is not an integer") from None
        try:
            return cls.parse(env.get(ENV_VAR, ""), seed=seed)
        except FaultSpecError as exc:
            raise FaultSpecError(f"{ENV_VAR}: {exc}") from None

    @contextlib.contextmanager
    def injecting(self, **rates: float) -> Iterator["FaultPlan"]:
        """Other rates for a while (tests): `with stack.faults.injecting(serializable=1.0): ...`."""
        for kind, rate in rates.items():
            _check(kind, rate)
        saved = dict(self.rates)
        self.rates.update(rates)
        try:
            yield self
        finally:
            self.rates.clear()
            self.rates.update(saved)

    # ---------------------------------------------------------------- asking
    @property
    def active(self) -> bool:
        return self.enabled and any(rate > 0 for rate in self.rates.values())

    def rate(self, kind: str) -> float:
        if kind not in FAULTS:
            raise KeyError(f"unknown fault {kind!r}")
        return self.rates.get(kind, 0.0) if self.enabled else 0.0

    def should(self, kind: str) -> bool:
        """Draw once for `kind`; True (and counted) when the fault is to be injected now."""
        rate = self.rate(kind)
        if rate <= 0.0:
            return False
        with self._lock:
            self._chances[kind] += 1
            hit = self._rng.random() < rate
            if self.cover and not self._injected[kind] and self._chances[kind] >= min(COVER_BY, math.ceil(1 / rate)):
                hit = True  # a short run still sees every fault once
            if hit:
                self._injected[kind] += 1
        return hit

    def uniform(self, low: float, high: float) -> float:
        with self._lock:
            return self._rng.uniform(low, high)

    def randrange(self, stop: int) -> int:
        with self._lock:
            return self._rng.randrange(stop)

    def injected(self) -> dict[str, int]:
        """Faults injected so far, by kind (every kind with a rate is listed, even at 0)."""
        with self._lock:
            counts = dict(self._injected)
        return {kind: counts.get(kind, 0) for kind in FAULTS if kind in self.rates or counts.get(kind)}

    def describe(self) -> str:
        if not self.rates:
            return "none"
        return ",".join(f"{kind}={self.rates[kind]:g}" for kind in FAULTS if kind in self.rates)


def _check(kind: str, rate: float) -> None:
    if kind not in FAULTS:
        raise FaultSpecError(f"unknown fault {kind!r}; known faults: {', '.join(FAULTS)}")
    if not isinstance(rate, (int, float)) or not 0.0 <= float(rate) <= 1.0:
        raise FaultSpecError(f"fault {kind!r}: rate {rate!r} is outside 0..1 (it is a probability)")


# ------------------------------------------------------ which Lambda is running
_running = threading.local()


@contextlib.contextmanager
def lambda_invocation(function_name: str) -> Iterator[None]:
    """Marks the current thread as running one invocation of `function_name` (set by the pump)."""
    previous = getattr(_running, "name", None)
    _running.name = function_name
    try:
        yield
    finally:
        _running.name = previous


def current_function() -> str | None:
    """The Lambda function the current thread is running, or None outside the pump's invocations."""
    return getattr(_running, "name", None)
