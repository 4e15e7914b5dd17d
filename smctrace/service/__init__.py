"""``--http``: smctrace as a service: a live page, Prometheus ``/metrics`` and a JSON API.

    service = Service("127.0.0.1:9100", recent=1000, source="-i eth0", output=output)
    service.bind()        # as root, before the privilege drop
    sink = service.sink   # trace into it: each event goes to the chosen output, then here
    service.start()       # after the drop: serve in threads of its own
    ... service.tick(summary, followed, capture) when the tracer is idle ...
    service.stop()
"""

from smctrace.service.server import Service, ServiceError

__all__ = ["Service", "ServiceError"]
