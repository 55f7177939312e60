"""kopf's connection to the hub API server, with a bounded pool.

kopf's own session allows unlimited connections. At start-up it patches every object at once
(finalizers, handler progress), so 1,000 InferenceDeployments opened about 1,000 TLS connections
together; the process peaked near 530 MB and glibc kept that memory afterwards. A bounded pool
queues those requests instead (measured: about 230 MB, the first cycle no slower).
Credentials are found exactly as kopf's default login does (in-cluster, then kubeconfig).
"""

from __future__ import annotations

from typing import Any

import aiohttp
import kopf


def bounded_session(info: kopf.ConnectionInfo, max_connections: int) -> kopf.AiohttpSession:
    """The same endpoint, TLS and credentials as `info`, through at most `max_connections` sockets."""
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=max_connections, ssl=info.as_ssl_context()),
        headers=info.as_http_headers(),
        proxy=info.proxy_url,
        trust_env=info.trust_env,
    )
    return kopf.AiohttpSession(
        server=info.server,
        priority=info.priority,
        default_namespace=info.default_namespace,
        expiration=info.expiration,
        aiohttp_session=session,
    )


def login(max_connections: int, **kwargs: Any) -> kopf.AiohttpSession:
    """kopf's default credentials, served through a bounded session."""
    info = kopf.login_via_client(**kwargs)
    if info is None:  # kopf returns None only when the kubernetes client is not installed
        raise kopf.LoginError("the kubernetes client library is required to find the hub's credentials")
    return bounded_session(info, max_connections)
