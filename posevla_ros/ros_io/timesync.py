"""Time sync of camera streams: one home for pairing RGB / depth / CameraInfo by stamp.

``subscribe_synced`` subscribes a node to its camera streams and calls back with one
message per stream whose stamps agree: ``message_filters.ApproximateTimeSynchronizer``
where it imports (every real ROS install), else ``StampSync`` (the wheel-based venv).
``nearest`` is the one "closest stamp within a slop" rule, used by ``StampSync`` and free
for any other stream that pairs by stamp (e.g. joint states to an image).
"""
from __future__ import annotations

import collections
import threading
from typing import Callable, Iterable, Sequence

from posevla_ros.ros_io.conversions import stamp_to_sec

try:
    import message_filters  # real ROS install

    HAVE_MESSAGE_FILTERS = True
except ImportError:  # wheel-based venv: StampSync
    message_filters = None
    HAVE_MESSAGE_FILTERS = False

#: per-stream queue length, both for message_filters and StampSync
QUEUE_SIZE = 10


def nearest(entries: Iterable[tuple[float, object]], t: float, slop_s: float):
    """The ``(stamp, item)`` of ``entries`` closest to ``t``, or None if none lies within
    ``slop_s``."""
    best = min(entries, key=lambda e: abs(e[0] - t), default=None)
    return None if best is None or abs(best[0] - t) > slop_s else best


class StampSync:
    """Approximate time sync (used only without message_filters), stream 0 the pivot.

    ``add(i, msg)`` stores msg in stream i's queue (the ``queue_size`` newest arrivals). A
    candidate set is a stream-0 message plus, per other stream, the queued message closest
    in stamp, all within ``slop_s`` of each other. A candidate is *final* once every stream
    has received a message stamped at or after the candidate's latest stamp: streams arrive
    in stamp order, so no later message can make a tighter set. Of the final candidates the
    tightest (then the newest) is passed to ``callback(*msgs)``; then every queued message
    stamped at or before the set in its stream is discarded, so a set is emitted once and a
    stale message is never matched later.

    Why final and not greedy: after a burst on one stream (say ~1000 color images without
    depth), that stream's messages are still being delivered when a good RGB-D frame comes.
    A greedy match paired the good depth image with a burst color image a few ms older,
    the good color image then found no depth, and the good frame was never answered.
    Cameras stamp color, depth and CameraInfo of one frame alike: such a set is final as
    soon as its last member arrives. Cost per add: O(queue_size^2 * streams).

    Thread safe: ``add`` may be called from several executor threads; ``callback`` runs
    outside the lock. ``received[i]`` and ``emitted`` count messages in and sets out."""

    def __init__(self, n_streams: int, slop_s: float, callback: Callable, queue_size: int = QUEUE_SIZE) -> None:
        self.slop_s, self._cb = slop_s, callback
        self._q = [collections.deque(maxlen=queue_size) for _ in range(n_streams)]
        self._last = [None] * n_streams   # stamp of the latest arrival per stream
        self._lock = threading.Lock()
        self.received = [0] * n_streams
        self.emitted = 0

    def add(self, index: int, msg) -> None:
        t = stamp_to_sec(msg.header.stamp)
        out = []
        with self._lock:
            self.received[index] += 1
            self._q[index].append((t, msg))
            self._last[index] = t
            while (match := self._best_final()) is not None:
                for j, (tm, _) in enumerate(match):
                    kept = [e for e in self._q[j] if e[0] > tm]
                    self._q[j].clear()
                    self._q[j].extend(kept)
                self.emitted += 1
                out.append([m for _, m in match])
        for msgs in out:
            self._cb(*msgs)

    def _best_final(self):
        if any(t is None for t in self._last):
            return None
        best, best_key = None, None
        for pivot in self._q[0]:
            picked = [pivot] + [nearest(q, pivot[0], self.slop_s) for q in self._q[1:]]
            if any(p is None for p in picked):
                continue
            stamps = [p[0] for p in picked]
            end, span = max(stamps), max(stamps) - min(stamps)
            if span > self.slop_s or any(last < end for last in self._last):
                continue
            key = (span, -pivot[0])
            if best_key is None or key < best_key:
                best, best_key = picked, key
        return best


def subscribe_synced(node, streams: Sequence[tuple[type, str]], slop_s: float, callback: Callable, qos):
    """Subscribe ``node`` to ``streams`` ([(msg type, topic), ...]) with ``qos`` and call
    ``callback(*msgs)`` (one per stream, in order) for every stamp-synced set. Returns the
    synchronizer (a ``StampSync`` where message_filters is missing: its counters are the
    node's view of what arrived)."""
    if HAVE_MESSAGE_FILTERS:
        subs = [message_filters.Subscriber(node, t, n, qos_profile=qos) for t, n in streams]
        sync = message_filters.ApproximateTimeSynchronizer(subs, queue_size=QUEUE_SIZE, slop=slop_s)
        sync.registerCallback(callback)
        return sync
    sync = StampSync(len(streams), slop_s, callback)
    for i, (t, n) in enumerate(streams):
        node.create_subscription(t, n, lambda m, i=i: sync.add(i, m), qos)
    return sync
