"""Capacity: a pool of serving capacity whose latency degrades as requests in flight pile up.

Without a pool the emulator's latency does not depend on load, so no interference between
workloads can ever be seen. A *pool* is the capacity behind one model, or behind several
models at once (as a quota project, a provisioned-throughput purchase or one serving
cluster would be). Every generate or stream request to a model of the pool counts in the
pool's in-flight number from the moment it is planned until its answer is written.

The queueing model, as data (``pools:`` in the profile, or ``capacity:`` on one model)::

    load       = in_flight / capacity           # this request included
    congestion = max(0, load - knee) / (1 - knee)
    ttft      *= 1 + ttft_gain * congestion     # keeps growing past capacity: queueing
    decode    /= (1 + decode_gain * min(congestion, 1)) * max(1, load)

Below the knee (half the capacity by default: the headroom a latency-first set-up keeps)
load costs nothing. Between the knee and the capacity, time to first token and the decode
rate degrade linearly (batched prefill and decode share the accelerators). Past the
capacity the pool's decode is shared by every request in flight (processor sharing), so the
pool's total decode rate stops growing, and time to first token keeps growing with the
queue. The load is read once, when the request is planned: the plan of a response is drawn
up front (see ``model.py``), and the seeded generator stays deterministic for a given
arrival order.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

#: Defaults of a pool's shape; the profile's header documents them.
DEFAULT_KNEE = 0.5
DEFAULT_TTFT_GAIN = 0.5
DEFAULT_DECODE_GAIN = 0.5

POOL_KEYS = frozenset({"capacity", "knee", "ttft_gain", "decode_gain"})


@dataclass(frozen=True, slots=True)
class Pool:
    """The capacity shared by the models that name it (see the module docstring)."""

    name: str
    capacity: float
    knee: float = DEFAULT_KNEE
    ttft_gain: float = DEFAULT_TTFT_GAIN
    decode_gain: float = DEFAULT_DECODE_GAIN

    def factors(self, in_flight: int) -> tuple[float, float]:
        """``(ttft_factor, decode_slowdown)`` at ``in_flight`` requests (this one included).

        Time to first token is multiplied by the first, the decode rate divided by the second.
        """
        load = in_flight / self.capacity
        congestion = max(0.0, load - self.knee) / (1.0 - self.knee)
        ttft = 1.0 + self.ttft_gain * congestion
        decode = (1.0 + self.decode_gain * min(congestion, 1.0)) * max(1.0, load)
        return ttft, decode


class PoolBook:
    """Requests in flight per pool. Touched from the event loop; read under the lock."""

    def __init__(self, pools: dict[str, Pool]) -> None:
        self.pools = pools
        self._lock = threading.Lock()
        self._in_flight = dict.fromkeys(pools, 0)
        self._peak = dict.fromkeys(pools, 0)

    def enter(self, name: str) -> int:
        """Count one more request in ``name``; return the count with it."""
        with self._lock:
            n = self._in_flight[name] + 1
            self._in_flight[name] = n
            self._peak[name] = max(self._peak[name], n)
            return n

    def leave(self, name: str) -> None:
        """The request has been answered (or abandoned)."""
        with self._lock:
            self._in_flight[name] -= 1

    def reset_peaks(self) -> None:
        """Forget the peaks (the admin reset)."""
        with self._lock:
            self._peak = dict(self._in_flight)

    def snapshot(self) -> dict[str, dict[str, float]]:
        """``{pool: {"capacity", "in_flight", "peak_in_flight"}}`` for the stats endpoint."""
        with self._lock:
            return {
                name: {
                    "capacity": pool.capacity,
                    "in_flight": self._in_flight[name],
                    "peak_in_flight": self._peak[name],
                }
                for name, pool in self.pools.items()
            }
