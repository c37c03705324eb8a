"""``--state-file``: the store's merged state on disk, so that an agent restart loses nothing.

Without it the merged totals of apps that had already exited lived in memory only: after an
agent restart Prometheus' ``increase()`` was 17% short (no reset seen) or 5-6% over (a
reset seen, the live apps' totals counted twice). The agent now writes its state at
intervals and at shutdown and reads it back when it starts, as Prometheus' Pushgateway
persists its metrics (``--persistence.file``).

What is written (JSON, atomically: a temporary file in the same directory, fsync, rename,
fsync of the directory; mode 0600, since label values are data):

* every family (name, kind, unit, help) and merged series: labels and merged values,
  buckets, count and sum, so that the first scrape after a restart shows exactly the
  values of the last one before it. The text exposition carries no created timestamp,
  so continuity of the value is what tells Prometheus there was no reset;
* the merged exponential histogram of each series (the native histogram of a protobuf
  scrape), so that a restart is no reset there either;
* behind each series, each instance's last cumulative point (start time, time, value,
  count, sum, buckets), live or retired, so that an app's first export after the restart
  is the same incarnation and adds only its increment, not its whole total again;
* how long ago each series and instance was updated: staleness counts the downtime (wall
  clock; the monotonic clock starts again with the process).

Not written: the 1m/5m windows (they start empty, as they do on any start) and the agent's
own self-metrics. After a crash (no write at shutdown) the state is at most
``state_interval`` old: the live apps' next exports make up the difference, while what
exited apps sent in that interval is lost.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gemini_slo.agent.exponential import ExpHistogram
from gemini_slo.agent.store import Instance, LabelKey, Series, Store
from gemini_slo.contract.signals import Kind

FORMAT = "gemini-slo-agent-state"
VERSION = 1


class StateError(Exception):
    """The state file is not one this agent can read."""


@dataclass(frozen=True, slots=True)
class Loaded:
    """What :func:`load` restored."""

    series: int
    dropped: int  # series the current limits had no room for
    age: float  # seconds since the file was written


def save(store: Store, path: Path) -> int:
    """Write the store's state to ``path`` atomically; returns the size in bytes."""
    data = encode(store)
    _write_atomically(path, data)
    return len(data)


def load(store: Store, path: Path) -> Loaded:
    """Restore ``path`` into an empty ``store``; :class:`StateError` when it is unusable.

    Nothing is restored from a file that does not decode whole.
    """
    raw = path.read_bytes()
    try:
        document = json.loads(raw)
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise StateError("not a gemini-slo agent state file")
        if document.get("version") != VERSION:
            raise StateError(f"state file version {document.get('version')!r}, not {VERSION}")
        age = max(0.0, time.time() - float(document["saved_at"]))
        families = [_decode_family(f) for f in document["families"]]
    except StateError:
        raise
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise StateError(f"state file does not decode: {type(exc).__name__}: {exc}") from None
    restored = dropped = 0
    with store.lock:
        now = store.clock()
        for (name, otel_name, kind, unit, help_text), series_list in families:
            family = store.restore_family(name, otel_name, kind, unit, help_text)
            for labels, overflow, series_age, series, instances, retired in series_list:
                series.updated = now - series_age - age
                for table, source in ((series.instances, instances), (series.retired, retired)):
                    for key, inst_age, inst in source:
                        inst.seen = now - inst_age - age
                        table[key] = inst
                if family is not None and store.restore_series(family, labels, series, overflow):
                    restored += 1
                else:
                    dropped += 1
    return Loaded(restored, dropped, age)


# ---- encoding ---------------------------------------------------------------------------


def encode(store: Store) -> bytes:
    """The state as JSON bytes (values are copied under the store's lock, dumped after)."""
    with store.lock:
        now = store.clock()
        families = [
            {
                "name": family.name,
                "otel_name": family.otel_name,
                "kind": family.kind.value,
                "unit": family.unit,
                "help": family.help,
                "series": [
                    _encode_series(labels, series, now) for labels, series in family.series.items()
                ],
            }
            for family in store.families.values()
        ]
    document = {"format": FORMAT, "version": VERSION, "saved_at": time.time(), "families": families}
    # allow_nan: a sum of many large finite values may reach infinity; JSON has no word
    # for it, Python's reader takes "Infinity" back.
    return json.dumps(document, separators=(",", ":"), allow_nan=True).encode()


def _encode_series(labels: LabelKey, series: Series, now: float) -> list[Any]:
    return [
        [list(pair) for pair in labels],
        series.overflow,
        now - series.updated,
        series.value,
        series.count,
        series.sum,
        list(series.bounds) if series.bounds is not None else None,
        list(series.buckets),
        [[_jsonable(k), now - i.seen, _encode_instance(i)] for k, i in series.instances.items()],
        [[_jsonable(k), now - i.seen, _encode_instance(i)] for k, i in series.retired.items()],
        _encode_exp(series.exp),
    ]


def _encode_exp(exp: ExpHistogram | None) -> list[Any] | None:
    if exp is None:
        return None
    return [
        exp.scale,
        exp.count,
        exp.sum,
        exp.zero_count,
        exp.zero_threshold,
        exp.positive_offset,
        list(exp.positive),
        exp.negative_offset,
        list(exp.negative),
    ]


def _encode_instance(inst: Instance) -> list[Any]:
    exp = inst.exp
    return [
        inst.start,
        inst.time,
        inst.value,
        inst.count,
        inst.sum,
        list(inst.bounds),
        list(inst.buckets),
        _encode_exp(exp),
    ]


def _jsonable(key: Any) -> Any:
    """Instance keys are nested tuples of strings: lists in JSON."""
    if isinstance(key, tuple):
        return [_jsonable(k) for k in key]
    return key


# ---- decoding ---------------------------------------------------------------------------


def _tuple(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuple(v) for v in value)
    return value


_FamilyInfo = tuple[str, str, Kind, str, str]
_Entry = tuple[str, float, Instance]
_SeriesEntry = tuple[LabelKey, bool, float, Series, list[Any], list[Any]]


def _decode_family(raw: dict[str, Any]) -> tuple[_FamilyInfo, list[_SeriesEntry]]:
    info = (
        str(raw["name"]),
        str(raw["otel_name"]),
        Kind(raw["kind"]),
        str(raw["unit"]),
        str(raw["help"]),
    )
    return info, [_decode_series(s) for s in raw["series"]]


def _decode_series(raw: list[Any]) -> _SeriesEntry:
    # The 11th field, the merged native histogram, is absent from files written before it.
    labels_raw, overflow, age, value, count, total, bounds, buckets, instances, retired = raw[:10]
    labels: LabelKey = tuple((str(k), str(v)) for k, v in labels_raw)
    series = Series(0.0)
    series.value = float(value)
    series.count = int(count)
    series.sum = float(total)
    series.bounds = tuple(float(b) for b in bounds) if bounds is not None else None
    series.buckets = [int(c) for c in buckets]
    if series.bounds is not None and len(series.buckets) != len(series.bounds) + 1:
        raise ValueError("buckets and bounds do not match")
    series.exp = _decode_exp(raw[10]) if len(raw) > 10 else None
    return (
        labels,
        bool(overflow),
        float(age),
        series,
        [(_tuple(k), float(a), _decode_instance(i)) for k, a, i in instances],
        [(_tuple(k), float(a), _decode_instance(i)) for k, a, i in retired],
    )


def _decode_instance(raw: list[Any]) -> Instance:
    start, time_, value, count, total, bounds, buckets, exp = raw
    inst = Instance(0.0)
    inst.start = int(start)
    inst.time = int(time_)
    inst.value = float(value)
    inst.count = int(count)
    inst.sum = float(total)
    inst.bounds = tuple(float(b) for b in bounds)
    inst.buckets = [int(c) for c in buckets]
    inst.exp = _decode_exp(exp)
    return inst


def _decode_exp(raw: list[Any] | None) -> ExpHistogram | None:
    if raw is None:
        return None
    scale, n, s, zero, threshold, pos_off, pos, neg_off, neg = raw
    return ExpHistogram(
        int(scale),
        int(n),
        float(s),
        int(zero),
        float(threshold),
        int(pos_off),
        [int(c) for c in pos],
        int(neg_off),
        [int(c) for c in neg],
    )


def _write_atomically(path: Path, data: bytes) -> None:
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be fsynced
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
