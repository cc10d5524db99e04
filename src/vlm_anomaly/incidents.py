"""The one definition of an incident: scores of a source in order → events, live and offline alike.

Live monitoring feeds each sample to an :class:`EventBuilder` as it is scored; offline results
(``score``, the Test page, the demo) are replayed through the same builder (:func:`replay`), so
the same file gives the same incidents everywhere. The builder smooths causally (the model's
window, as its threshold was calibrated, and a shorter one spanning ``event_end_smoothing_s`` that
ends events), then applies hysteresis and a minimum duration.

Hysteresis, so one incident gives one event, not a hundred alerts.

States: idle → pending (score fell below ``enter``) → active (stayed below ``exit`` for
``min_duration_s``) → closing (score rose above ``exit``) → idle once ``cooldown_s`` has passed
without a new dip below ``enter``. A dip during the cool-down continues the same event.

Two signals: events are confirmed on a steadily smoothed score (few false alarms) and, when the
caller has one, also follow a faster one (a shorter smoothing window), so an event does not outlast
the incident by the slow window's lag. A dip (opening an event, or continuing one during its
cool-down) needs both below ``enter``; an event closes when either is back above ``exit`` (after an
incident: the fast one); a pending event is confirmed on the slow one alone, as without a fast
signal. So the fast signal never opens, reopens or lengthens an event - no new false alarms - and
the slow one's lag after an incident cannot open a second event once the fast one is normal.

Scores follow the detectors' convention: higher = more normal, so "worse" means lower.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np

from .config import EventSettings
from .errors import ConfigError
from .smoothing import CausalSmoother, SpanSmoother
from .values import Gap


@dataclass(frozen=True)
class HysteresisConfig:
    """Thresholds (enter < exit) and timings, in seconds of source time."""

    enter: float = 0.0
    exit: float = 0.05
    min_duration_s: float = 1.0
    cooldown_s: float = 2.0

    def __post_init__(self) -> None:
        if self.exit < self.enter:
            raise ConfigError(f"event exit threshold {self.exit} must not be below the enter threshold {self.enter}")
        if self.min_duration_s < 0 or self.cooldown_s < 0:
            raise ConfigError("event min duration and cool-down must not be negative")

    @classmethod
    def from_settings(cls, events: EventSettings, model_threshold: float = 0.0) -> HysteresisConfig:
        """The thresholds of the ``events`` section (``settings.events``), around ``model_threshold``."""
        h = events.event_hysteresis
        enter = events.event_enter_threshold
        if enter is None:
            enter = model_threshold - h
        exit_ = events.event_exit_threshold
        if exit_ is None:
            exit_ = max(enter, model_threshold - h / 2) if events.event_enter_threshold is None else enter + h / 2
        return cls(enter, exit_, events.event_min_duration_s, events.event_cooldown_s)


class Phase(str, Enum):  # noqa: UP042 (str mix-in keeps str() output plain)
    IDLE = "idle"
    PENDING = "pending"
    ACTIVE = "active"
    CLOSING = "closing"


@dataclass
class Transition:
    """What an update changed: ``kind`` is "start" (event confirmed) or "end" (event over)."""

    kind: str
    start_time: float
    end_time: float | None = None


class EventTracker:
    """The hysteresis state machine for one source.

    Example:
        >>> tr = EventTracker(HysteresisConfig(enter=0.0, exit=0.1, min_duration_s=1, cooldown_s=1))
        >>> scores = [0.5] * 3 + [-1.0] * 5 + [0.5] * 5
        >>> [(t.kind, t.start_time, t.end_time) for i, s in enumerate(scores)
        ...  for t in tr.update(i * 0.5, s)]
        [('start', 1.5, None), ('end', 1.5, 4.0)]
    """

    def __init__(self, config: HysteresisConfig):
        self.config = config
        self.phase = Phase.IDLE
        self.start_time: float | None = None  # first sample below enter
        self.exit_time: float | None = None  # when the score rose above exit (closing)

    @property
    def in_event(self) -> bool:
        """True while an event is confirmed and not yet over (active or cooling down)."""
        return self.phase in (Phase.ACTIVE, Phase.CLOSING)

    def update(self, t: float, score: float, fast: float | None = None) -> list[Transition]:
        """One sample at source time ``t``: ``score``, smoothed as the threshold was calibrated, and
        optionally ``fast``, a faster-reacting score of the same sample that lets events end sooner."""
        c = self.config
        # higher = more normal: the less anomalous of the two opens (both low) and closes (either high)
        either = score if fast is None else max(score, fast)
        dip = either < c.enter
        out: list[Transition] = []
        if self.phase == Phase.IDLE:
            if dip:
                self.phase, self.start_time = Phase.PENDING, t
        elif self.phase == Phase.PENDING:
            if score >= c.exit:
                self.phase, self.start_time = Phase.IDLE, None
        elif self.phase == Phase.ACTIVE:
            if either >= c.exit:
                self.phase, self.exit_time = Phase.CLOSING, t
        elif self.phase == Phase.CLOSING:
            if dip:
                self.phase, self.exit_time = Phase.ACTIVE, None
            elif self.exit_time is not None and t - self.exit_time >= c.cooldown_s:
                out.append(self._end())
        if (
            self.phase == Phase.PENDING
            and self.start_time is not None
            and t - self.start_time >= c.min_duration_s
        ):
            self.phase = Phase.ACTIVE
            out.append(Transition("start", self.start_time))
        return out

    def _end(self) -> Transition:
        tr = Transition("end", float(self.start_time or 0.0), self.exit_time)
        self.phase, self.start_time, self.exit_time = Phase.IDLE, None, None
        return tr

    def finish(self, t: float) -> list[Transition]:
        """The source ended: close a running event (at ``t`` if still below the threshold)."""
        if not self.in_event:
            self.phase, self.start_time = Phase.IDLE, None
            return []
        if self.phase == Phase.ACTIVE:
            self.exit_time = t
        return [self._end()]


@dataclass(frozen=True)
class Step:
    """What one sample did: its smoothed scores, the phase after it, and any event start/end.
    ``settled``: ``smooth`` averages a whole window, not the few samples since the start or a gap."""

    smooth: float
    fast: float
    phase: Phase
    transitions: list[Transition]
    settled: bool = True

    @property
    def in_incident(self) -> bool:
        """The sample belongs to a (pending or confirmed) incident: it counts in its scores."""
        return self.phase in (Phase.PENDING, Phase.ACTIVE)

    def beats(self, worst: float, settled: bool) -> bool:
        """This sample is its incident's new worst, against the worst so far (``settled`` as above).

        Why settled first: the threshold was calibrated on whole windows, and just after a reset the
        first samples average only a few frames (the first alone: its raw score), so one extreme
        frame there would set the event's severity (and alerts' certainty) several times lower than
        the same frame anywhere else; those samples count only while the event has no settled one.
        """
        return (not self.settled, self.smooth) < (not settled, worst)


class EventBuilder:
    """Scores of one source, in order, in; event starts and ends out - what live and offline share.

    Events open on the score smoothed over the model's window (as its threshold was calibrated)
    and end on one smoothed over about ``end_span_s`` seconds (shorter at coarse sampling), so they
    end soon after the incident does.

    Example:
        >>> b = EventBuilder(HysteresisConfig(0.0, 0.1, 1.0, 1.0), window=1, end_span_s=1.0, interval_s=0.5)
        >>> [(t.kind, t.start_time) for i, s in enumerate([1.0] * 2 + [-1.0] * 4 + [1.0] * 4)
        ...  for t in b.update(i * 0.5, s).transitions]
        [('start', 1.0), ('end', 1.0)]
    """

    def __init__(self, config: HysteresisConfig, *, window: int, end_span_s: float, interval_s: float | None):
        self.config = config
        self.window = max(1, int(window))
        self.tracker = EventTracker(config)
        self.smoother = CausalSmoother(self.window)
        self.end_smoother = SpanSmoother(end_span_s, self.window, interval_s=interval_s)

    @classmethod
    def from_settings(cls, events: EventSettings, *, threshold: float, model_window: int,
                      interval_ms: int) -> EventBuilder:
        """The builder of the ``events`` settings for a model (its threshold and smoothing window)
        sampled every ``interval_ms`` (0: every frame, spacing measured)."""
        return cls(HysteresisConfig.from_settings(events, threshold),
                   window=events.event_smoothing_window or model_window, end_span_s=events.event_end_smoothing_s,
                   interval_s=interval_ms / 1000 if interval_ms > 0 else None)

    @property
    def phase(self) -> Phase:
        return self.tracker.phase

    def set_config(self, config: HysteresisConfig) -> None:
        """New thresholds; the running event keeps its history."""
        self.config = self.tracker.config = config

    def update(self, t: float, score: float) -> Step:
        smooth = self.smoother.update(score)
        fast = self.end_smoother.update(t, score)
        transitions = self.tracker.update(t, smooth, fast)
        return Step(smooth, fast, self.tracker.phase, transitions, self.smoother.full)

    def reset_smoothing(self) -> None:
        """Scores before and after a gap are not neighbours."""
        self.smoother.reset()
        self.end_smoother.reset()

    def restart(self) -> None:
        """Forget the event in progress (after a failure)."""
        self.tracker = EventTracker(self.config)

    def finish(self, t: float) -> list[Transition]:
        """The source ended at ``t``: close a running event."""
        return self.tracker.finish(t)

    def cut(self, t: float, reason: str) -> list[tuple[Transition, str]]:
        """The source went away after ``t`` (a gap, a drop, its end): a running event ends there and
        says why ("recovered" when it was already cooling down), and smoothing starts afresh."""
        why = "recovered" if self.phase == Phase.CLOSING else reason
        out = [(tr, why) for tr in self.tracker.finish(t)]
        self.reset_smoothing()
        return out


@dataclass(frozen=True)
class Incident:
    """One event of a source: when it started and ended (source time), its frames and worst moment.

    ``frames``, ``worst_score`` and ``mean_score`` are over the samples of the incident (pending or
    confirmed, not cooling down), in the causally smoothed score events are built on (the worst
    over whole windows, see :meth:`Step.beats`); ``worst_position`` is the worst sample's position
    among all samples of the source.
    """

    start_time: float
    end_time: float
    frames: int
    worst_score: float
    worst_time: float
    worst_position: int
    mean_score: float
    end_reason: str = "recovered"

    def as_dict(self) -> dict:
        return {
            "start_time": round(self.start_time, 3),
            "end_time": round(self.end_time, 3),
            "frames": self.frames,
            "worst_score": round(self.worst_score, 6),
            "worst_time": round(self.worst_time, 3),
            "mean_score": round(self.mean_score, 6),
            "end_reason": self.end_reason,
        }


def replay(builder: EventBuilder, timestamps: Sequence[float] | np.ndarray,
           scores: Sequence[float] | np.ndarray, gaps: Sequence[Gap] = ()) -> list[Incident]:
    """The incidents a source's raw scores give, sample by sample, as live monitoring builds them:
    at each of ``gaps`` the running incident ends and smoothing starts afresh; the source ends
    after the last sample."""
    out: list[Incident] = []
    run: list[tuple[int, float, float]] = []  # (position, time, smoothed score) of the open incident
    none: tuple[int, float, float, bool] = (0, 0.0, float("inf"), False)
    worst = none  # the open incident's worst sample: (position, time, smoothed score, settled)
    confirmed = False
    last_t = 0.0
    ahead = sorted(gaps, key=lambda g: g.end_time)

    def close(cut: list[tuple[Transition, str]], end_time: float) -> None:
        nonlocal run, worst, confirmed
        for tr, why in cut:
            if tr.kind == "end" and run:
                k, wt, ws, _ = worst
                out.append(Incident(run[0][1], tr.end_time if tr.end_time is not None else end_time, len(run), ws,
                                    wt, k, float(np.mean([r[2] for r in run])), why))
        run, worst, confirmed = [], none, False

    for k, (t, s) in enumerate(zip(np.asarray(timestamps, np.float64), np.asarray(scores, np.float64))):
        t = float(t)
        while ahead and ahead[0].end_time <= t + 1e-6:
            gap = ahead.pop(0)
            if k:
                close(builder.cut(last_t, gap.ends_event), last_t)
        last_t = t
        step = builder.update(t, float(s))
        if step.phase == Phase.IDLE and run and not confirmed:
            run, worst = [], none  # a dip too short to be an event
        if step.in_incident:
            run.append((k, t, step.smooth))
            if step.beats(worst[2], worst[3]):
                worst = (k, t, step.smooth, step.settled)
        for tr in step.transitions:
            if tr.kind == "start":
                confirmed = True
            elif tr.kind == "end":
                close([(tr, "recovered")], t)
    close(builder.cut(last_t, "source ended"), last_t)
    return out
