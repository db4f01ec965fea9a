"""Prometheus metrics of the event streams and broadcasters of this process.

Needs the ``metrics`` extra (``pip install "litestar-sse[metrics]"``, which brings
``prometheus_client``). :func:`register_metrics` adds a collector to a prometheus_client
registry (the default one, which Litestar's ``PrometheusController`` serves at ``/metrics``).
Values are read when the registry is scraped; nothing is computed per event.

Metrics, all per process:

* ``litestar_sse_streams_open``: streams whose body is being sent;
* ``litestar_sse_streams_started_total``;
* ``litestar_sse_streams_stopped_total{reason}``: streams stopped before their producer ended,
  by reason: ``disconnect``, ``send_timeout``, ``overflow``, ``shutdown``, ``lifetime``,
  ``unauthorized``;
* ``litestar_sse_events_sent_total``, ``litestar_sse_bytes_sent_total`` (events and bytes of
  events; a live stream adds its events every 256 events and when it ends; bytes are counted
  by streams started after :func:`register_metrics`, at the cost of one call per event);
* ``litestar_sse_pings_sent_total``, ``litestar_sse_producer_errors_total``;
* ``litestar_sse_cleanups_cut_total``: stopped producers whose cleanup outlasted
  ``cleanup_timeout`` (or the shutdown grace period) and was cancelled, or whose sync worker
  thread was left to finish its close (a stream stopped for any reason counts once in
  ``streams_stopped_total``; this counts how many of them then hung in their cleanup);
* for each broadcaster given, labelled ``broadcaster`` (its name), all prefixed
  ``litestar_sse_broadcast`` (see :class:`~litestar_sse.broadcast.types.BroadcastStats` for the
  details of each):

  * ``..._subscribers``, ``..._topics``: open subscriptions, topics with local subscribers;
  * ``..._queue_bytes``: bytes queued for all subscribers now (events not written yet, and
    the chunk being written, as ``max_queue_bytes`` counts them; a shared event counts once
    per subscriber); ``..._queue_bytes_max``: the most one subscriber had queued when it
    was looked at, over the last 10 s at least (a peak);
  * ``..._published_total``, ``..._received_total``, ``..._delivered_total``,
    ``..._dropped_total``, ``..._slow_disconnected_total``;
  * ``..._resumes_total``: subscriptions resumed from a ``Last-Event-ID`` whose stream
    started; ``..._replayed_total``: events replayed to them (in ``delivered`` too);
  * ``..._gaps_total{reason}``: gap events sent, by reason: ``invalid``, ``epoch``,
    ``retention``, ``overflow``;
  * ``..._backend_errors_total{error}``: calls that found the backend (Redis) unavailable,
    by what failed: ``not_published``, ``outcome_unknown`` (publishes), ``subscribe``,
    ``replay``, ``read``, ``reader`` (failed rounds of the Redis reader);
    ``..._backend_reconnects_total``: outages the Redis reader recovered from.

A scrape costs a few operations per topic with local subscribers, none per subscriber: the
gauges of queued bytes are read from counters kept as events are taken, and every other
value is a counter read as it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, get_args

from litestar_sse.asgi._counters import COUNTERS, StreamCounters
from litestar_sse.asgi._state import StopReason

if TYPE_CHECKING:
    from litestar_sse.broadcast import Broadcaster

__all__ = ("SSECollector", "register_metrics")


class SSECollector:
    """A prometheus_client collector of litestar_sse's counters (see the module).

    Args:
        broadcasters: Broadcasters to report, by the name of their ``broadcaster`` label.
        counters: The stream counters to report (the process's, by default).
    """

    def __init__(
        self,
        broadcasters: Mapping[str, Broadcaster] | None = None,
        *,
        counters: StreamCounters = COUNTERS,
    ) -> None:
        self.broadcasters = dict(broadcasters or {})
        self.counters = counters

    def collect(self) -> Iterator[Any]:
        """The metrics, read now (called by prometheus_client on each scrape)."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        c = self.counters
        yield GaugeMetricFamily(
            "litestar_sse_streams_open", "Event streams being sent now", value=c.open_streams
        )
        for name, text, value in (
            ("streams_started", "Event streams started", c.streams_started),
            ("events_sent", "Events written to event streams", c.events_sent),
            ("bytes_sent", "Bytes of events written to event streams", c.bytes_sent),
            ("pings_sent", "Keep-alive pings started", c.pings_sent),
            ("producer_errors", "Stream producers that raised", c.producer_errors),
            ("cleanups_cut", "Producer cleanups cancelled for running too long", c.cleanups_cut),
        ):
            yield CounterMetricFamily(f"litestar_sse_{name}", text, value=value)
        stopped = CounterMetricFamily(
            "litestar_sse_streams_stopped",
            "Event streams stopped before their producer ended, by reason",
            labels=["reason"],
        )
        for reason in get_args(StopReason):
            stopped.add_metric([reason], c.stops.get(reason, 0))
        yield stopped
        yield from self._broadcast(self.broadcasters.items())

    @staticmethod
    def _broadcast(broadcasters: Iterable[tuple[str, Broadcaster]]) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        prefix = "litestar_sse_broadcast"
        gauges = {
            name: GaugeMetricFamily(f"{prefix}_{name}", text, labels=["broadcaster"])
            for name, text in (
                ("subscribers", "Open subscriptions"),
                ("topics", "Topics with local subscribers"),
                ("queue_bytes", "Bytes queued for subscribers, not written yet"),
                ("queue_bytes_max", "Most bytes one subscriber had queued, last 10 s or more"),
            )
        }
        counters = {
            name: CounterMetricFamily(f"{prefix}_{name}", text, labels=["broadcaster"])
            for name, text in (
                ("published", "Events published"),
                ("received", "Events that reached the local fan-out"),
                ("delivered", "Events handed to subscribers' streams (one per subscriber)"),
                ("dropped", "Events slow subscribers skipped or lost when disconnected"),
                ("slow_disconnected", "Subscribers disconnected for being too slow"),
                ("resumes", "Subscriptions resumed from a Last-Event-ID whose stream started"),
                ("replayed", "Events replayed to resuming subscribers"),
                ("backend_reconnects", "Outages of the backend its reader recovered from"),
            )
        }
        gaps = CounterMetricFamily(
            f"{prefix}_gaps", "Gap events sent, by reason", labels=["broadcaster", "reason"]
        )
        errors = CounterMetricFamily(
            f"{prefix}_backend_errors",
            "Calls that found the backend unavailable, by what failed",
            labels=["broadcaster", "error"],
        )
        for label, broadcaster in broadcasters:
            stats = broadcaster.stats()
            for name, value in (
                ("subscribers", sum(stats.subscribers.values())),
                ("topics", len(stats.subscribers)),
                ("queue_bytes", stats.queue_bytes),
                ("queue_bytes_max", stats.queue_bytes_max),
            ):
                gauges[name].add_metric([label], value)
            for name, value in (
                ("published", stats.published),
                ("received", stats.received),
                ("delivered", stats.delivered),
                ("dropped", stats.dropped),
                ("slow_disconnected", stats.disconnected),
                ("resumes", stats.resumes),
                ("replayed", stats.replayed),
                ("backend_reconnects", stats.backend_reconnects),
            ):
                counters[name].add_metric([label], value)
            for reason, count in stats.gaps.items():
                gaps.add_metric([label, reason], count)
            for error, count in stats.backend_errors.items():
                errors.add_metric([label, error], count)
        yield from gauges.values()
        yield from counters.values()
        yield gaps
        yield errors


def register_metrics(
    broadcasters: Mapping[str, Broadcaster] | None = None, *, registry: Any = None
) -> SSECollector:
    """Add an :class:`SSECollector` to ``registry`` (prometheus_client's default registry
    when ``None``) and return it; serve the registry with Litestar's ``PrometheusController``.

    Call it once per process (a second collector in one registry is refused by
    prometheus_client, as duplicated metric names).
    """
    try:
        from prometheus_client import REGISTRY
    except ImportError as exc:  # pragma: no cover - the extra is installed in the tests
        raise ImportError(
            'litestar_sse.metrics needs prometheus_client: pip install "litestar-sse[metrics]"'
        ) from exc
    collector = SSECollector(broadcasters)
    (REGISTRY if registry is None else registry).register(collector)
    COUNTERS.count_bytes = True  # streams started from now on count their bytes
    return collector
