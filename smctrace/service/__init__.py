"""``--http``: smctrace as a service: a live page, Prometheus ``/metrics`` and a JSON API.

    service = Service("127.0.0.1:9100", recent=1000, source="-i eth0")
    service.bind()                       # as root, before the privilege drop
    sink = FanOut(output, service.sink)  # next to the chosen stdout output
    service.start()                      # after the drop: serve in threads of its own
    ... service.tick(summary, followed, capture) when the tracer is idle ...
    service.stop()
"""

from smctrace.service.server import Service, ServiceError
from smctrace.service.sink import FanOut

__all__ = ["FanOut", "Service", "ServiceError"]
