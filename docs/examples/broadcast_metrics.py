"""Prometheus metrics of the streams and the broadcaster, at /metrics."""

from litestar import Litestar
from litestar.plugins.prometheus import PrometheusController

from litestar_sse import SSEConfig, SSEPlugin
from litestar_sse.broadcast import Broadcaster
from litestar_sse.metrics import register_metrics

broadcaster = Broadcaster()
register_metrics({"main": broadcaster})  # once per process, in prometheus_client's registry

app = Litestar(
    [PrometheusController],  # serves prometheus_client's registry
    plugins=[SSEPlugin(SSEConfig(broadcaster=broadcaster))],
)
