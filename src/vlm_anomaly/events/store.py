"""Anomaly events and stream gaps in a SQL database (SQLite by default, any SQLAlchemy URL).

Why SQLAlchemy Core: one embedded file beside the model store for a single machine, PostgreSQL for
a fleet, the same code. Snapshots and clips are files under ``media_root``; rows hold their paths
relative to it, so the folder can move. Retention deletes rows and their files together.
"""

from __future__ import annotations

import datetime as _dt
import logging
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ..cameras import camera_id
from ..errors import VlmAnomalyError
from ..redact import redact_text, redact_url, source_slug
from .lease import OwnerLease, aware, utcnow

log = logging.getLogger(__name__)

metadata = sa.MetaData()

events_table = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(1024), nullable=False, index=True),
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, default="open"),  # open | closed
    sa.Column("start_time", sa.Float, nullable=False),  # seconds of source time
    sa.Column("end_time", sa.Float),
    sa.Column(
        "started_at", sa.DateTime(timezone=True), nullable=False, index=True
    ),  # wall clock, UTC
    sa.Column("ended_at", sa.DateTime(timezone=True)),
    sa.Column("worst_score", sa.Float, nullable=False),
    sa.Column("worst_time", sa.Float, nullable=False),
    sa.Column("mean_score", sa.Float, nullable=False),
    sa.Column("frames", sa.Integer, nullable=False, default=0),
    sa.Column("descriptions", sa.JSON, nullable=False, default=list),  # [{time, text, confidence}]
    sa.Column("prompt", sa.String(256)),  # the known-bad prompt that fired, if any
    sa.Column("prompt_score", sa.Float),
    sa.Column("snapshot", sa.String(512)),  # path relative to media_root
    sa.Column("clip", sa.String(512)),
    sa.Column("media_bytes", sa.Integer, nullable=False, default=0),
    sa.Column("acknowledged", sa.Boolean, nullable=False, default=False, index=True),
    sa.Column("acknowledged_at", sa.DateTime(timezone=True)),
    sa.Column("acknowledged_by", sa.String(128)),
    # why an event closed other than by the score recovering (e.g. "watcher failed: ...")
    sa.Column("end_reason", sa.String(512)),
    # while open: who builds the event (see lease.py), when it last said so, and the source time
    # it had reached - what a later start needs to close it if that process died
    sa.Column("owner", sa.String(256), index=True),
    sa.Column("heartbeat_at", sa.DateTime(timezone=True)),
    sa.Column("last_time", sa.Float),
    # "activity" (something in the scene) or "camera" (the camera itself: dark, frozen, moved ...);
    # NULL in rows written before it existed, read as "activity"
    sa.Column("kind", sa.String(16)),
    # the name the camera was watched under (a client's or the settings'); NULL before it existed
    sa.Column("camera", sa.String(128)),
    # ids never reused (SQLite would give a deleted last event's id again): a client holding an old
    # id must not acknowledge or delete another event with it (a store made before keeps its rule)
    sqlite_autoincrement=True,
)

gaps_table = sa.Table(
    "stream_gaps",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(1024), nullable=False, index=True),
    sa.Column("start_time", sa.Float, nullable=False),
    sa.Column("end_time", sa.Float, nullable=False),
    sa.Column("missed_s", sa.Float, nullable=False),
    sa.Column("reason", sa.String(512), nullable=False),
    sa.Column("reconnects", sa.Integer, nullable=False),
    sa.Column("camera", sa.String(128)),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)


class EventNotFoundError(VlmAnomalyError):
    """No event with that id."""

    status_code = 404


class EventOpenError(VlmAnomalyError):
    """An event still being built: its watcher writes its row and media until it closes."""

    status_code = 409


@dataclass
class EventRecord:
    """One stored event (a row), as the CLI, the API and alerts show it."""

    id: int
    source: str
    model: str
    status: str
    start_time: float
    end_time: float | None
    started_at: _dt.datetime
    ended_at: _dt.datetime | None
    worst_score: float
    worst_time: float
    mean_score: float
    frames: int
    descriptions: list[dict] = field(default_factory=list)
    prompt: str | None = None
    prompt_score: float | None = None
    snapshot: str | None = None
    clip: str | None = None
    media_bytes: int = 0
    acknowledged: bool = False
    acknowledged_at: _dt.datetime | None = None
    acknowledged_by: str | None = None
    end_reason: str | None = None
    owner: str | None = None
    heartbeat_at: _dt.datetime | None = None
    last_time: float | None = None
    kind: str | None = "activity"
    camera: str | None = None  # the name it was watched under

    def __post_init__(self) -> None:
        if self.kind is None:  # a row written before events had a kind: they were all activity
            self.kind = "activity"

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d.pop("owner")  # a lease id, host name and pid: the store's business, not the API's
        d["source"] = redact_url(d["source"])  # rows written before masking existed
        for k in ("started_at", "ended_at", "acknowledged_at", "heartbeat_at"):
            d[k] = aware(d[k]).isoformat() if d[k] is not None else None
        for k in ("start_time", "end_time", "worst_time", "last_time"):
            d[k] = round(d[k], 3) if d[k] is not None else None
        for k in ("worst_score", "mean_score", "prompt_score"):
            d[k] = round(d[k], 6) if d[k] is not None else None
        return d


def event_reason(prompt: str | None, descriptions: list[dict] | None) -> str:
    """What an event is about, in a few words: the fired prompt, else its most frequent description."""
    if prompt:
        return str(prompt)
    texts = [d.get("text") for d in descriptions or [] if isinstance(d, dict) and d.get("text")]
    return Counter(texts).most_common(1)[0][0] if texts else "unusual activity"


def event_kind(descriptions: list[dict]) -> str:
    """An event's kind from its frames' explanations: "camera" when at least half of them blame the
    camera itself, else "activity" (explanations without a kind are activity)."""
    kinds = [d.get("kind", "activity") for d in descriptions if isinstance(d, dict)]
    return "camera" if kinds and 2 * kinds.count("camera") >= len(kinds) else "activity"


class EventStore:
    """Create, update, query, acknowledge and expire events.

    Example:
        >>> store = EventStore("sqlite:///events.db", "events/")  # doctest: +SKIP
        >>> [e.id for e in store.list(acknowledged=False)]  # doctest: +SKIP
    """

    def __init__(self, url: str, media_root: str | Path):
        self.url = url
        self.media_root = Path(media_root).expanduser()
        kwargs: dict[str, Any] = {"future": True}
        if url.startswith("sqlite"):
            db = url.split("///", 1)[-1]
            if db and db != ":memory:":
                Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            if db in ("", ":memory:") or url.rstrip("/") == "sqlite:":
                kwargs["poolclass"] = sa.pool.StaticPool  # one shared in-memory database
        try:
            self.engine = sa.create_engine(url, **kwargs)
            if url.startswith("sqlite"):
                sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            _create_tables(self.engine)
        except (sa.exc.SQLAlchemyError, ImportError) as exc:
            raise VlmAnomalyError(f"cannot open events database {redact_url(url)}: {redact_text(exc)}") from None
        self._lock = threading.Lock()  # SQLite allows one writer; serialise this process' writers
        # this store's claim on the events it opens (lock file + heartbeat), taken on the first one
        self.lease = OwnerLease(self.media_root, self.heartbeat)

    @classmethod
    def from_settings(cls, settings) -> EventStore:
        return cls(settings.events_url, settings.events_path)

    def close(self) -> None:
        self.lease.release()
        self.engine.dispose()

    # -- writing -------------------------------------------------------------------------
    def _write(self, statement) -> sa.CursorResult:
        """Run one writing statement in its own transaction (one writer at a time in this process)."""
        with self._lock, self.engine.begin() as conn:
            return conn.execute(statement)

    def create(self, **values: Any) -> int:
        """Insert an event; an open one is stamped with this store's owner and a first heartbeat."""
        values.setdefault("started_at", utcnow())
        values.setdefault("status", "open")
        if values["status"] == "open" and "owner" not in values:
            values["owner"] = self.lease.claim()
            values.setdefault("heartbeat_at", utcnow())
        return int(self._write(events_table.insert().values(**values)).inserted_primary_key[0])

    def update(self, event_id: int, **values: Any) -> None:
        if values.get("end_reason"):
            values["end_reason"] = str(values["end_reason"])[:500]
        if self._write(events_table.update().where(events_table.c.id == event_id).values(**values)).rowcount == 0:
            raise EventNotFoundError(f"no event with id {event_id}")

    def heartbeat(self, owner: str) -> int:
        """Stamp ``heartbeat_at`` on the owner's open events: it still runs. Returns how many."""
        res = self._write(events_table.update()
                          .where(events_table.c.owner == owner, events_table.c.status == "open")
                          .values(heartbeat_at=utcnow()))
        return int(res.rowcount)

    def close_if_open(self, event_id: int, owner: str | None, **values: Any) -> bool:
        """Close an event only if it is still open and still ``owner``'s: True if this call closed it.

        Why conditional: two processes starting at once may both find the same stale event; one
        closes it, the other sees it closed and stays quiet."""
        owner_match = events_table.c.owner.is_(None) if owner is None else events_table.c.owner == owner
        res = self._write(events_table.update()
                          .where(events_table.c.id == event_id, events_table.c.status == "open", owner_match)
                          .values(status="closed", **values))
        return res.rowcount == 1

    def acknowledge(self, event_id: int, by: str | None = None) -> EventRecord:
        self.update(event_id, acknowledged=True, acknowledged_at=utcnow(), acknowledged_by=by)
        return self.get(event_id)

    def add_gap(self, gap, camera: str | None = None) -> int:
        res = self._write(gaps_table.insert().values(
            source=gap.source, start_time=gap.start_time, end_time=gap.end_time, missed_s=gap.missed_s,
            reason=gap.reason[:500], reconnects=gap.reconnects, recorded_at=utcnow(), camera=camera))
        return int(res.inserted_primary_key[0])

    def delete(self, event_id: int) -> None:
        """Remove a closed event and its media. An open one is refused: its watcher would go on
        writing a row that is gone and media nothing would ever remove."""
        rec = self.get(event_id)
        if rec.status == "open":
            raise EventOpenError(f"event {event_id} is still open: delete it once it has ended")
        self._write(events_table.delete().where(events_table.c.id == event_id))
        self._remove_media(rec)

    # -- reading -------------------------------------------------------------------------
    def get(self, event_id: int) -> EventRecord:
        with self.engine.connect() as conn:
            row = conn.execute(events_table.select().where(events_table.c.id == event_id)).first()
        if row is None:
            raise EventNotFoundError(f"no event with id {event_id}")
        return EventRecord(**row._asdict())

    def list(self, *, source: str | None = None, acknowledged: bool | None = None, status: str | None = None,
             limit: int = 100, offset: int = 0) -> list[EventRecord]:
        q = events_table.select().order_by(events_table.c.started_at.desc(), events_table.c.id.desc())
        if source is not None:
            q = q.where(self._of_source(events_table, source))
        for column, value in (("acknowledged", acknowledged), ("status", status)):
            if value is not None:
                q = q.where(events_table.c[column] == value)
        q = q.limit(max(1, min(int(limit), 10_000))).offset(max(0, int(offset)))
        with self.engine.connect() as conn:
            return [EventRecord(**r._asdict()) for r in conn.execute(q)]

    def sources(self) -> list[str]:
        """Every source that has events or gaps (as stored: credentials masked)."""
        q = sa.union(sa.select(events_table.c.source), sa.select(gaps_table.c.source))
        with self.engine.connect() as conn:
            return sorted({r[0] for r in conn.execute(q) if r[0]})

    def _of_source(self, table: sa.Table, name: str):
        """Rows of the source ``name`` stands for (:meth:`find_source`) or of the camera so named."""
        return sa.or_(table.c.source == self.find_source(name), table.c.camera == name)

    def find_source(self, name: str | None) -> str | None:
        """The stored source ``name`` stands for: the masked URL as shown, a camera name
        (``cam1.lan_live``, or ``cam1_lan_live`` as ``GET /sources`` shows a source's camera), a
        path, or (still accepted) the URL with its credentials."""
        if name is None:
            return None
        shown = redact_url(name)
        known = self.sources()
        if shown in known:
            return shown
        return next((s for s in known if name in (source_slug(s), camera_id(s))), shown)

    def gaps(self, source: str | None = None, limit: int = 100) -> list[dict]:
        """The latest stream gaps, newest first, as shown: masked, times in ISO 8601 (UTC)."""
        q = gaps_table.select().order_by(gaps_table.c.id.desc()).limit(limit)
        if source is not None:
            q = q.where(self._of_source(gaps_table, source))
        with self.engine.connect() as conn:
            rows = [r._asdict() for r in conn.execute(q)]
        for g in rows:
            g["source"], g["reason"] = redact_text(g["source"]), redact_text(g["reason"])
            g["recorded_at"] = aware(g["recorded_at"]).isoformat()
        return rows

    def media_path(self, relative: str | None) -> Path | None:
        """Absolute path of a stored snapshot/clip, never outside ``media_root``."""
        if not relative:
            return None
        root = self.media_root.resolve()
        p = (root / relative).resolve()
        if root not in p.parents:
            return None
        return p

    # -- retention -----------------------------------------------------------------------
    def apply_retention(self, *, max_age_days: float = 0, max_bytes: int = 0) -> int:
        """Delete closed events older than ``max_age_days`` and, oldest first, those beyond
        ``max_bytes`` of media; returns how many were deleted."""
        cutoff = utcnow() - _dt.timedelta(days=max_age_days)
        doomed: list[EventRecord] = []
        with self.engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(events_table.c.media_bytes), 0))).scalar_one()
            rows = conn.execute(events_table.select().where(events_table.c.status == "closed")
                                .order_by(events_table.c.started_at, events_table.c.id))
            for r in rows:  # oldest first: every one too old comes before the others
                too_old = max_age_days > 0 and aware(r.started_at) < cutoff
                if not too_old and not (max_bytes > 0 and total > max_bytes):
                    break
                doomed.append(EventRecord(**r._asdict()))
                total -= r.media_bytes
        if doomed:
            self._write(events_table.delete().where(events_table.c.id.in_([e.id for e in doomed])))
            for e in doomed:
                self._remove_media(e)
            log.info("retention: deleted %d event(s)", len(doomed))
        return len(doomed)

    def _remove_media(self, rec: EventRecord) -> None:
        for rel in (rec.snapshot, rec.clip):
            p = self.media_path(rel)
            if p is not None:
                p.unlink(missing_ok=True)

    def __iter__(self) -> Iterator[EventRecord]:
        return iter(self.list(limit=10_000))


def _create_tables(engine: sa.Engine) -> None:
    """Create missing tables; another process creating them at the same moment is fine."""
    for attempt in range(3):
        try:
            metadata.create_all(engine)
            _add_missing_columns(engine)
            return
        except sa.exc.OperationalError as exc:
            if "already exists" not in str(exc) or attempt == 2:
                raise


def _add_missing_columns(engine: sa.Engine) -> None:
    """Columns added to a table since a database was created (all nullable): ALTER TABLE ADD."""
    insp = sa.inspect(engine)
    for table in metadata.sorted_tables:
        have = {c["name"] for c in insp.get_columns(table.name)}
        for col in table.columns:
            if col.name in have:
                continue
            kind = col.type.compile(dialect=engine.dialect)
            try:
                with engine.begin() as conn:
                    conn.execute(sa.text(f'ALTER TABLE {table.name} ADD COLUMN "{col.name}" {kind}'))
            except sa.exc.SQLAlchemyError:  # another process added it at the same moment
                if col.name not in {c["name"] for c in sa.inspect(engine).get_columns(table.name)}:
                    raise
                continue
            log.info("events database: added column %s.%s", table.name, col.name)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers (API) do not block the watcher's writes
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()
