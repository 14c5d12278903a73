"""Who may read the dashboard's document: exactly who may call the control API.

Without ``--require-auth`` the control API accepts any caller its Host/Origin checks let through, and so
does the dashboard. With it, every read of ``/dashboard/state.json`` must carry a SigV4 signature made with
the configured key, checked by ``api.sigv4`` like any control-API call: the page's login form keeps the key
in the tab's ``sessionStorage`` and signs each request in the browser (the secret never crosses the wire);
a script signs with botocore. The page shell and its static assets hold no data and are served to anyone.
"""

from __future__ import annotations

from starlette.requests import Request

from triggerfish.api import sigv4


def auth_required(request: Request) -> bool:
    """Whether reads of the document must be signed (the app has a key)."""
    return request.app.state.access_key is not None


async def check(request: Request) -> None:
    """Raise an ``AuthenticationError`` unless the request may read the document."""
    key: sigv4.AccessKey | None = request.app.state.access_key
    if key is None:
        return
    sigv4.verify_scope(key, request.scope, await request.body())
