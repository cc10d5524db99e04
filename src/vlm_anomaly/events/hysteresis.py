"""Turn smoothed scores into events, so one incident gives one event, not a hundred alerts.

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

from dataclasses import dataclass
from enum import Enum

from ..config import EventSettings
from ..errors import ConfigError


@dataclass(frozen=True)
class HysteresisConfig:
    """Thresholds (enter < exit) and timings, in seconds of source time."""

    enter: float = 0.0
    exit: float = 0.05
    min_duration_s: float = 1.0
    cooldown_s: float = 2.0

    def __post_init__(self) -> None:
        if self.exit < self.enter:
            raise ConfigError(
                f"event exit threshold {self.exit} must not be below the enter "
                f"threshold {self.enter}"
            )
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
            exit_ = (
                max(enter, model_threshold - h / 2)
                if events.event_enter_threshold is None
                else enter + h / 2
            )
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
        self.last_below: float | None = None  # last sample below exit while in the event
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
                self.phase, self.start_time, self.last_below = Phase.PENDING, t, t
        elif self.phase == Phase.PENDING:
            if score >= c.exit:
                self.phase, self.start_time = Phase.IDLE, None
            else:
                self.last_below = t
        elif self.phase == Phase.ACTIVE:
            if either >= c.exit:
                self.phase, self.exit_time = Phase.CLOSING, t
            else:
                self.last_below = t
        elif self.phase == Phase.CLOSING:
            if dip:
                self.phase, self.exit_time, self.last_below = Phase.ACTIVE, None, t
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
        self.phase, self.start_time, self.exit_time, self.last_below = Phase.IDLE, None, None, None
        return tr

    def finish(self, t: float) -> list[Transition]:
        """The source ended: close a running event (at ``t`` if still below the threshold)."""
        if not self.in_event:
            self.phase, self.start_time = Phase.IDLE, None
            return []
        if self.phase == Phase.ACTIVE:
            self.exit_time = t
        return [self._end()]
