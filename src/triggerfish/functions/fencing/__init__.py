"""Site fencing for two-site deployments, as a function behind a function URL that Alertmanager calls.

Use ``triggerfish.functions.fencing.handler`` as the function's Handler. The handler is built when
the runtime first looks it up (the function's start-up), from the environment variables described in
:mod:`.config`, so a missing or malformed variable fails the start, by name, not the first alert
(``triggerfish run`` waits for each function's start). It then probes every Infinispan endpoint
(address, TLS, credentials); a failure is logged and makes the function not ready (``GET /ready``).
Importing the package itself reads nothing; it checks that the packages of the ``fencing`` extra
are installed (:mod:`.extra`, ``pip install 'triggerfish[fencing]'``).

Modules: :mod:`.webhook` (Basic auth, Alertmanager payload), :mod:`.plan` (the decision),
:mod:`.balancers` (Global Accelerator, Route 53), :mod:`.infinispan` (cross-site take-offline),
:mod:`.lock` (single-flight), :mod:`.fencer` (runs a plan), :mod:`.app` (the HTTP handler).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from triggerfish.functions.fencing import extra, lock  # noqa: F401 - extra first: it checks the packages the rest import
from triggerfish.functions.fencing.app import FencingFunction
from triggerfish.functions.fencing.balancers import LoadBalancer
from triggerfish.functions.fencing.balancers.globalaccelerator import GlobalAccelerator
from triggerfish.functions.fencing.balancers.route53 import Route53
from triggerfish.functions.fencing.config import FencingConfig, SecretPassword
from triggerfish.functions.fencing.decisions import ensure_output
from triggerfish.functions.fencing.fencer import Fencer
from triggerfish.functions.fencing.infinispan import Infinispan
from triggerfish.functions.readiness import NOT_READY_ATTRIBUTE

__all__ = ["FencingConfig", "FencingFunction", "build", "load_handler"]


def build(config: FencingConfig) -> FencingFunction:
    """Read the secrets and create the clients ``config`` describes."""
    lock.check(config.lock_file)
    balancer: LoadBalancer
    if config.load_balancer == "route53":
        balancer = Route53(config.route53_zone or "")
    else:
        balancer = GlobalAccelerator(region=config.ga_region, endpoint_url=config.ga_endpoint_url)
    infinispan = Infinispan(
        config.infinispan_endpoints,
        config.infinispan_user,
        SecretPassword("INFINISPAN_USER_SECRET", config.infinispan_user_secret, config.secrets_region),
        ca_file=config.infinispan_ca_file,
        timeout=config.infinispan_timeout,
    )
    webhook_password = SecretPassword("WEBHOOK_USER_SECRET", config.webhook_user_secret, config.secrets_region)
    return FencingFunction(Fencer(balancer, infinispan, config.dry_run), config.webhook_user, webhook_password, config.lock_file)


def load_handler(environ: Mapping[str, str] | None = None) -> FencingFunction:
    """Build the handler from environment variables (``os.environ`` by default)."""
    ensure_output()
    return build(FencingConfig.from_environ(environ))


def __getattr__(name: str) -> Any:
    # PEP 562: `handler` is created on first lookup, i.e. when the runtime loads the function.
    if name == "handler":
        function = load_handler()

        def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
            return function(event, context)

        # A wrong address, CA or password must show before the split brain: GET /ready reports it.
        problem = function.check_connections()
        if problem is not None:
            setattr(handler, NOT_READY_ATTRIBUTE, problem)
        globals()["handler"] = handler
        return handler
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
