"""Simulated progress of long-running RDS work (the emulator's latency).

moto makes snapshots, clusters and instances `available` at once. Real RDS
takes minutes, and the pipeline's waits, retries and state checks are only
exercised when resources sit in `creating`, `copying`, `renaming`, ... for a
while. A `Progress` attached to a resource reports its in-progress status for
a number of describe calls of that resource (`polls`) or a number of seconds,
then its final status (`available`, or `failed` when a fault rule says so).

Latency is configured per kind of work (see KINDS). A delay may grow with the
allocated size of the data involved (`per_gib` seconds per GiB), so that a
realistic profile copies a 500 GiB snapshot for longer than a 5 GiB one.
"""

import threading
import time

KINDS = (
    "snapshot",  # a cluster snapshot being created (`creating`)
    "copy",  # a cluster snapshot being copied (`copying`)
    "cluster",  # CreateDBCluster (`creating`)
    "restore",  # RestoreDBClusterFromSnapshot (`creating`)
    "instance",  # CreateDBInstance (`creating`)
    "rename",  # a renamed cluster or instance (`renaming`)
    "modify",  # any other ModifyDBCluster (`modifying`)
    "delete",  # a deleted cluster or instance (`deleting`, then gone)
    "dns",  # until a new endpoint name resolves to the renamed resource
    "dns_cache",  # how long an old endpoint name keeps reaching the renamed resource
)

_lock = threading.Lock()


class Delay:
    """How long one kind of work stays in progress: `polls` describe calls,
    or `seconds` plus `per_gib` seconds per GiB of allocated storage."""

    def __init__(self, polls=0, seconds=0.0, per_gib=0.0):
        if int(polls) < 0 or float(seconds) < 0 or float(per_gib) < 0:
            raise ValueError("polls, seconds and per_gib must not be negative")
        self.polls = int(polls)
        self.seconds = float(seconds)
        self.per_gib = float(per_gib)

    @classmethod
    def parse(cls, spec):
        if not isinstance(spec, dict) or not set(spec) <= {"polls", "seconds", "per_gib"}:
            raise ValueError(f'expected {{"polls": N}} or {{"seconds": S, "per_gib": G}}, got {spec!r}')
        return cls(spec.get("polls", 0), spec.get("seconds", 0.0), spec.get("per_gib", 0.0))

    def to_json(self):
        return {"polls": self.polls, "seconds": self.seconds, "per_gib": self.per_gib}


class Latency:
    """Current delay of each kind; changed by flags and the control endpoint."""

    def __init__(self):
        self.delays = {kind: Delay() for kind in KINDS}

    def configure(self, spec):
        """Applies `{"polls": N}` / `{"seconds": S}` to every kind, or
        `{"snapshot": {...}, "copy": {...}, ...}` per kind (kinds left out
        keep their delay)."""
        if not isinstance(spec, dict):
            raise ValueError("latency must be a JSON object")
        if set(spec) <= {"polls", "seconds", "per_gib"}:
            delays = {kind: Delay.parse(spec) for kind in KINDS}
        else:
            unknown = set(spec) - set(KINDS)
            if unknown:
                raise ValueError(f"unknown kinds {sorted(unknown)}; known: {list(KINDS)}")
            delays = {kind: Delay.parse(value) for kind, value in spec.items()}
        with _lock:
            self.delays.update(delays)

    def get(self, kind):
        with _lock:
            return self.delays[kind]

    def to_json(self):
        with _lock:
            return {kind: delay.to_json() for kind, delay in self.delays.items()}


LATENCY = Latency()


class Progress:
    """In-progress status of one resource.

    The status shows on the response that started the work and on the next
    `polls` describe calls that return the resource, or until `seconds`
    (plus `per_gib` x `gib`) have passed, whichever is longer, then `final`
    shows.
    """

    def __init__(self, kind, status, final="available", gib=0.0, **extra):
        delay = LATENCY.get(kind)
        self.kind = kind
        self.status = status
        self.final = final
        self.polls = delay.polls
        self.started = time.monotonic()
        self.until = self.started + delay.seconds + delay.per_gib * float(gib or 0)
        self.seen = 0
        self.extra = extra

    def tick(self):
        """Counts one describe call that returned the resource."""
        with _lock:
            self.seen += 1

    def _running(self, now):
        """Called under the lock. A delay in seconds alone ends by the clock,
        whether or not anyone describes the resource (so that an RDS event
        fires and the resource is usable without a poll); one counted in
        polls, or a zero delay, ends only after describe calls."""
        if self.polls == 0 and self.until > self.started:
            return now < self.until
        return self.seen <= self.polls or now < self.until

    def active(self):
        with _lock:
            return self._running(time.monotonic())

    def percent(self):
        """The whole percent of the work done: the share of its duration
        elapsed, 0 at the start, at most 99 while in progress, 100 once it
        has ended. Work that lasts a number of polls has no duration to take
        a share of: 0 until it ends (a figure that does not move; a share of
        the polls would grow with the caller's polling, not with time)."""
        with _lock:
            now = time.monotonic()
            if not self._running(now):
                return 100
            if self.until <= self.started:
                return 0
            share = (now - self.started) / (self.until - self.started)
            return max(0, min(99, int(share * 100)))


def attach(resource, progress):
    resource.__dict__["_adr_progress"] = progress
    return progress


def progress_of(resource):
    return resource.__dict__.get("_adr_progress")


def status_of(resource, stored):
    """The status a describe call shows: in progress, then final, else stored."""
    progress = progress_of(resource)
    if progress is None:
        return stored
    if progress.active():
        return progress.status
    return progress.final


def percent_of(resource, stored):
    """The PercentProgress a describe call shows: the share of the work done
    while it is in progress (see `Progress.percent`), else `stored`."""
    progress = progress_of(resource)
    if progress is None:
        return stored
    return progress.percent()


def in_progress(resource, status=None):
    progress = progress_of(resource)
    if progress is None or not progress.active():
        return False
    return status is None or progress.status == status


def gib_of(resource):
    """The allocated storage (GiB) that sizes the resource's durations: set on
    a cluster through the control endpoint and carried to its snapshots,
    copies and restored clusters (0 when never set)."""
    return float(resource.__dict__.get("_adr_gib", 0.0))


def set_gib(resource, gib):
    resource.__dict__["_adr_gib"] = float(gib)
