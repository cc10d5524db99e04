"""A process that opens an event the way a watcher does and keeps it open until it is killed.

``python -m tests.events.crash_worker DB MEDIA``: prints ``opened ID`` once the event is stored with
its snapshot and clip, then ``frames N`` after each frame it adds to the clip (and to the row's
progress), for ever. Used to check what a SIGKILL leaves and what the next start does with it.
"""

import sys
import time

import numpy as np

from vlm_anomaly.events.evidence import EventEvidence, evidence_base
from vlm_anomaly.events.store import EventStore, utcnow


def frame(i: int) -> np.ndarray:
    img = np.full((240, 320, 3), 90, np.uint8)
    x = 10 + (i * 7) % 260
    img[100:150, x:x + 50] = (230, 20, 20)  # a red box crossing the picture
    return img


def main(db: str, media: str) -> None:
    store = EventStore(f"sqlite:///{db}", media)
    started = utcnow()
    ev = EventEvidence(store.media_root, fps=2, pre_roll=[frame(i) for i in range(4)])
    ev.worst(frame(3))
    eid = store.create(source="rtsp://cam/yard", model="street", start_time=2.0, started_at=started,
                       worst_score=-0.5, worst_time=2.0, mean_score=-0.5, frames=1, descriptions=[],
                       last_time=2.0)
    store.update(eid, **ev.open(evidence_base("rtsp://cam/yard", started, eid)))
    print(f"opened {eid}", flush=True)
    for i in range(4, 100_000):
        ev.add(frame(i))
        t = 2.0 + (i - 3) * 0.5
        store.update(eid, last_time=t, frames=i - 2)
        print(f"frames {i + 1} {t}", flush=True)
        time.sleep(0.1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
