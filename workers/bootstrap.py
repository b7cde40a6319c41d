"""The one place that wires mailroom together; only entry points import it.

``build_runtime`` turns settings into live parts (engine, broker, transport,
renderer), declares the actors and adds the middleware that serve them.
Nothing here runs at import.
"""

import dramatiq

from domain.flows import FlowPolicy
from workers import delivery, embedded, intake, metrics_host, webhooks
from workers.actors import Dispatcher, declare
from workers.apps import load_directory
from workers.broker import make_broker
from workers.courier import Courier, Keeper
from workers.db import make_engine
from workers.delivery import CLAIM_LEASE
from workers.health import TransportHealth
from workers.heartbeat import Heartbeat
from workers.ingress import IngressBridge
from workers.middleware import Background, DeadLetters
from workers.outcome_stream import outcome_stream_for
from workers.rendering import Renderer
from workers.retention import Purger, Retention
from workers.runtime import Holds, Runtime
from workers.settings import Settings
from workers.sweeper import Sweeper
from workers.transports import make_transport
from workers.transports.base import Transport
from workers.webhook_relay import WebhookRelay


def peppers_for(settings: Settings) -> dict[str, bytes]:
    current = settings.token_secret or embedded.token_secret(settings.state_dir)
    peppers = {settings.token_key_id: current.encode()}
    for key_id, secret in settings.old_secrets:
        peppers.setdefault(key_id, secret.encode())
    return peppers


def policy_for(settings: Settings) -> FlowPolicy:
    return FlowPolicy(
        ttl=settings.ttls,
        code_length=settings.code_length,
        reset_unknown_account=settings.reset_unknown_account,
    )


def build_runtime(
    settings: Settings,
    *,
    redis_url: str | None = None,
    transport: Transport | None = None,
    broker: dramatiq.Broker | None = None,
    background: bool = True,
    threads: int = 8,
) -> Runtime:
    """Everything one process needs.

    ``broker`` replaces the Redis broker (unit tests pass Dramatiq's
    ``StubBroker``).  ``background`` runs the ingress bridge, the courier's
    ``threads``, the sweeper and the lease keeper beside the worker's threads;
    without it, the caller drives them (``rt.dispatch.courier.run_pending``).
    """
    redis_url = redis_url or embedded.redis_url_for(settings)
    health = TransportHealth(redis_url)
    if settings.database_url is None:
        settings.state_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.sqlalchemy_url)
    broker = broker or make_broker(
        redis_url,
        min_backoff_ms=int(settings.retry_min_backoff * 1000),
        max_backoff_ms=int(settings.retry_max_backoff * 1000),
        metrics=metrics_host.enabled(),
    )
    holds = Holds()
    rt = Runtime(
        settings=settings,
        redis_url=redis_url,
        peppers=peppers_for(settings),
        key_id=settings.token_key_id,
        policy=policy_for(settings),
        engine=engine,
        broker=broker,
        dispatch=None,  # set below: the courier needs the runtime
        transport=transport or make_transport(settings, health=health),
        renderer=Renderer(overrides=settings.templates_dir),
        health=health,
        apps=load_directory(settings),
        holds=holds,
        outcome_stream=outcome_stream_for(redis_url, settings.outcomes_maxlen),
    )
    courier = Courier(
        lambda email_id, held, planned: delivery.deliver_email(
            rt, email_id, held=held, planned=planned
        ),
        holds,
        threads if background else 0,
    )
    rt.dispatch = Dispatcher(broker, courier)
    declare(broker, rt)
    broker.add_middleware(DeadLetters(rt))
    if not background:
        return rt
    broker.add_middleware(
        Background(
            # Stopped in this order: intake first, then the mail in hand.
            lambda: [
                *_webhook_relays(rt),
                IngressBridge(
                    redis_url,
                    lambda batch: intake.accept_batch(rt, batch),
                    wait_for_room=courier.wait_for_room,
                ),
                Sweeper(rt.engine, rt.claimant, courier, rt.clock),
                Purger(rt.engine, rt.clock, Retention.from_settings(settings)),
                courier,
            ],
            # After the broker's own threads: what is left held is handed back;
            # the heartbeat last, so a process counts as alive until it is done.
            lambda: [
                Keeper(rt.engine, rt.claimant, holds, rt.clock, CLAIM_LEASE),
                Heartbeat(redis_url, rt.claimant, holds, threads),
            ],
        )
    )
    return rt


def _webhook_relays(rt: Runtime) -> list[WebhookRelay]:
    """The relay to the apps' webhooks, when at least one app has one.  First, so
    its group exists before this process publishes an outcome."""
    if not webhooks.configured(rt.apps):
        return []
    return [
        WebhookRelay(
            rt.redis_url,
            rt.apps,
            rt.claimant,
            lambda app, webhook_id, body: webhooks.enqueue(rt.broker, app, webhook_id, body),
        )
    ]


def install(rt: Runtime) -> Runtime:
    """Make ``rt``'s broker the process's global one (the ``dramatiq`` command needs it)."""
    dramatiq.set_broker(rt.broker)
    return rt
