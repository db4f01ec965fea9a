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
* for each broadcaster given, labelled ``broadcaster`` (its name): ``..._subscribers``,
  ``..._topics``, ``..._published_total``, ``..._received_total``, ``..._delivered_total``,
  ``..._dropped_total``, ``..._slow_disconnected_total``, all prefixed
  ``litestar_sse_broadcast``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, get_args

from litestar_sse.asgi.counters import COUNTERS, StreamCounters
from litestar_sse.asgi.state import StopReason

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
            "subscribers": GaugeMetricFamily(
                f"{prefix}_subscribers", "Open subscriptions", labels=["broadcaster"]
            ),
            "topics": GaugeMetricFamily(
                f"{prefix}_topics", "Topics with local subscribers", labels=["broadcaster"]
            ),
        }
        counters = {
            name: CounterMetricFamily(f"{prefix}_{name}", text, labels=["broadcaster"])
            for name, text in (
                ("published", "Events published"),
                ("received", "Events that reached the local fan-out"),
                ("delivered", "Events handed to subscribers' streams (one per subscriber)"),
                ("dropped", "Events slow subscribers skipped or lost when disconnected"),
                ("slow_disconnected", "Subscribers disconnected for being too slow"),
            )
        }
        for label, broadcaster in broadcasters:
            stats = broadcaster.stats()
            gauges["subscribers"].add_metric([label], sum(stats.subscribers.values()))
            gauges["topics"].add_metric([label], len(stats.subscribers))
            for name, value in (
                ("published", stats.published),
                ("received", stats.received),
                ("delivered", stats.delivered),
                ("dropped", stats.dropped),
                ("slow_disconnected", stats.disconnected),
            ):
                counters[name].add_metric([label], value)
        yield from gauges.values()
        yield from counters.values()


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
