"""Which exposition format a scrape gets: content negotiation on its ``Accept`` header.

Three formats, as Prometheus names them in ``scrape_protocols``:

* ``PrometheusProto``: ``application/vnd.google.protobuf;
  proto=io.prometheus.client.MetricFamily; encoding=delimited``, the only one that carries
  native histograms (:mod:`gemini_slo.agent.exposition_proto`);
* ``OpenMetricsText1.0.0``: ``application/openmetrics-text; version=1.0.0``;
* ``PrometheusText0.0.4``: ``text/plain; version=0.0.4``, the default: a scraper that
  asks for nothing, for ``*/*``, or only for formats the agent does not write gets it.

Prometheus sends every protocol it accepts with a q-value (2.53 with native histograms:
``application/vnd.google.protobuf;...;q=0.6,application/openmetrics-text;version=1.0.0;
q=0.5,...,text/plain;version=0.0.4;q=0.3,*/*;q=0.2``). The choice is the format of the
highest q among those offered (a missing q is 1, ``q=0`` refuses); on a tie, the one
listed first. OpenMetrics ``version=0.0.1`` (its draft) is not matched: text 0.0.4 then.
"""

from __future__ import annotations

import enum


class Format(enum.Enum):
    """An exposition format; the value is the response's Content-Type."""

    PROTOBUF = (
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
        "encoding=delimited"
    )
    OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
    TEXT = "text/plain; version=0.0.4; charset=utf-8"

    @property
    def content_type(self) -> str:
        """The Content-Type header of a scrape in this format."""
        return str(self.value)


_PROTO_MEDIA = "application/vnd.google.protobuf"
_PROTO_MESSAGE = "io.prometheus.client.MetricFamily"


def _match(media: str, params: dict[str, str]) -> Format | None:
    if media == _PROTO_MEDIA:
        if params.get("proto") == _PROTO_MESSAGE and params.get("encoding") == "delimited":
            return Format.PROTOBUF
        return None
    if media == "application/openmetrics-text":
        return Format.OPENMETRICS if params.get("version", "1.0.0") == "1.0.0" else None
    if media == "text/plain":
        return Format.TEXT if params.get("version", "0.0.4") == "0.0.4" else None
    if media in ("*/*", "text/*"):
        return Format.TEXT
    return None


def negotiate(accept: str | None) -> Format:
    """The format for a scrape whose Accept header is ``accept`` (None: no header)."""
    best: Format | None = None
    best_q = 0.0
    for item in (accept or "").split(","):
        media, *rest = item.split(";")
        params: dict[str, str] = {}
        for param in rest:
            key, _, value = param.partition("=")
            params[key.strip().lower()] = value.strip().strip('"')
        try:
            q = float(params.pop("q", "1"))
        except ValueError:
            continue  # an unreadable q-value: that entry is ignored
        chosen = _match(media.strip().lower(), params)
        if chosen is not None and q > best_q:
            best, best_q = chosen, q
    return best or Format.TEXT
