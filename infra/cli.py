"""The `switchboard` command: the composition root that wires settings, clients and the edges."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import time
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from infra.settings import Settings

cli = typer.Typer(
    help="Switchboard: contact-centre voice data platform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _settings() -> Settings:
    return Settings()


def _bootstrap(settings: Settings) -> str:
    if not settings.kafka_bootstrap:
        raise typer.BadParameter(
            "SWITCHBOARD_KAFKA_BOOTSTRAP is not set; point it at a Kafka cluster or run `switchboard up`"
        )
    return settings.kafka_bootstrap


def _logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _migrations() -> Path:
    return Path(str(resources.files("projections").joinpath("migrations")))


@cli.command()
def up(
    demo: Annotated[bool, typer.Option(help="Once up, play a few simulated calls and print their alerts")] = False,
    demo_calls: Annotated[int, typer.Option(min=1, help="Calls the demo plays (Telnyx and Cresta in turn)")] = 4,
    demo_seconds: Annotated[
        float, typer.Option(min=20.0, help="Length of each demo call (s); dead air from 30 s, a hold from 40 s")
    ] = 50.0,
) -> None:
    """Start the local broker (unless SWITCHBOARD_KAFKA_BOOTSTRAP is set), topics, and every process."""
    from infra.supervisor import run_up

    s = _settings()
    on_ready = None
    if demo:
        from infra.simulate.demo import play_demo

        def on_ready(gateway: str, api: str, bootstrap: str, key: str) -> None:
            play_demo(s, gateway, api, bootstrap, key, typer.echo, calls=demo_calls, seconds=demo_seconds)

    raise typer.Exit(run_up(s, echo=typer.echo, on_ready=on_ready))


@cli.command()
def broker() -> None:
    """Run only the local Kafka broker, until Ctrl-C."""
    from infra.broker import LocalBroker

    s = _settings()
    local = LocalBroker(
        s.broker_dir,
        s.kafka_jars_dir,
        port=s.kafka_port,
        heap=s.kafka_heap,
        start_timeout_s=s.kafka_start_timeout_s,
    )
    with local:
        typer.echo(f"Kafka broker on {local.bootstrap} (started in {local.startup_seconds:.1f}s); Ctrl-C stops it")
        signal.sigwait({signal.SIGINT, signal.SIGTERM})


@cli.command()
def topics() -> None:
    """Create the topics that do not exist yet."""
    from infra.topics import Topics, ensure_topics

    s = _settings()
    created = asyncio.run(
        ensure_topics(
            _bootstrap(s),
            Topics.from_settings(s).specs(),
            partitions=s.topic_partitions,
            replication=s.topic_replication,
        )
    )
    typer.echo(f"created: {', '.join(created) or 'nothing (all exist)'}")


@cli.command()
def worker(loglevel: str = "info") -> None:
    """Run the Faust stream processors."""
    from processors.app import create_app, run_worker

    s = _settings()
    run_worker(create_app(s, _bootstrap(s)), loglevel=loglevel)


@cli.command()
def projector(
    with_api: bool = typer.Option(
        None,
        help="Serve the read API in this process (default: yes with embedded ClickHouse, no with a server)",
    ),
) -> None:
    """Materialise topics into ClickHouse (and serve the read API in embedded mode)."""
    _logging()
    s = _settings()
    serve_api = (s.clickhouse_url is None) if with_api is None else with_api
    asyncio.run(_projector_main(s, _bootstrap(s), serve_api))


@cli.command()
def api() -> None:
    """Serve the read API alone (ClickHouse server mode; embedded mode serves it from `projector`)."""
    import uvicorn

    from api.app import create_app
    from infra.store import ClickHouseStore, apply_migrations, load_migrations

    _logging()
    s = _settings()
    store = ClickHouseStore.open(s)
    apply_migrations(store, load_migrations(_migrations()))
    uvicorn.run(create_app(s, store, bootstrap=_bootstrap(s)), host=s.api_host, port=s.api_port, log_level="info")


@cli.command()
def gateway() -> None:
    """Serve the ingestion gateway."""
    _logging()
    s = _settings()
    asyncio.run(_gateway_main(s, _bootstrap(s)))


async def _gateway_main(settings: Settings, bootstrap: str) -> None:
    import uvicorn

    from infra.kafka_clients import make_producer, stop_producer
    from producers.context import GatewayContext
    from producers.gateway import create_gateway
    from producers.sink import RecordSink
    from schemas import AvroCodec

    producer = make_producer(bootstrap, settings)
    await producer.start()
    try:
        sink = RecordSink(producer, AvroCodec.default(), settings.produce_timeout_s)
        app = create_gateway(GatewayContext.build(settings, sink))
        server = uvicorn.Server(
            uvicorn.Config(app, host=settings.gateway_host, port=settings.gateway_port, ws="websockets-sansio")
        )
        await server.serve()
    finally:
        await stop_producer(producer, settings.produce_timeout_s)


async def _projector_main(settings: Settings, bootstrap: str, serve_api: bool) -> None:
    import uvicorn

    from api.app import create_app
    from infra.kafka_clients import make_consumer, make_producer, stop_producer
    from infra.store import ClickHouseStore, apply_migrations, load_migrations
    from infra.topics import Topics
    from projections.batch import Batcher
    from projections.projector import Projector
    from schemas import AvroCodec

    topics = Topics.from_settings(settings)
    store = ClickHouseStore.open(settings)
    applied = apply_migrations(store, load_migrations(_migrations()))
    logging.getLogger("switchboard").info("ClickHouse (%s) ready; migrations applied: %s", store.backend, applied)
    consumer = make_consumer(bootstrap, settings.group(settings.projector_group))
    producer = make_producer(bootstrap, settings)
    await producer.start()
    projector_ = Projector(
        consumer,
        store,
        AvroCodec.default(),
        Batcher(settings.projector_batch_size, settings.projector_flush_ms),
        deadletter=(producer, topics.deadletter),
    )
    consumer.subscribe(
        [topics.events, topics.speech, topics.transitions, topics.alerts], listener=projector_.listener()
    )
    await consumer.start()
    stop = asyncio.Event()
    server = None
    if serve_api:
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(settings, store, projector=projector_, bootstrap=bootstrap),
                host=settings.api_host,
                port=settings.api_port,
                log_level="info",
            )
        )
    loop = asyncio.get_running_loop()

    def request_stop() -> None:
        stop.set()
        if server is not None:
            server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, request_stop)
    try:
        tasks = [asyncio.create_task(projector_.run(stop))]
        if server is not None:
            tasks.append(asyncio.create_task(server.serve()))
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        request_stop()
        await asyncio.gather(*tasks)
    finally:
        await consumer.stop()
        await stop_producer(producer, settings.produce_timeout_s)
        store.close()


@cli.command()
def rules(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Rules file (JSON), see docs/rules.md")],
) -> None:
    """Publish a tenant's alert rules from a file to the rules topic (workers pick them up at once)."""
    from processors.rules.model import RuleError, parse_file, to_record

    s = _settings()
    try:
        rule_set = parse_file(path.read_text(encoding="utf-8"))
    except RuleError as exc:
        typer.echo(f"{path}: {exc}", err=True)
        raise typer.Exit(2) from exc
    asyncio.run(_publish_rules(s, _bootstrap(s), rule_set.cid, to_record(rule_set, int(time.time() * 1000))))
    typer.echo(f"published {len(rule_set.rules)} rule(s) of tenant {rule_set.cid} at version {rule_set.version}")


async def _publish_rules(settings: Settings, bootstrap: str, cid: int, record: dict[str, object]) -> None:
    from infra.kafka_clients import make_producer, stop_producer
    from infra.topics import Topics, ensure_topics
    from schemas import RULE_SET, AvroCodec

    topics = Topics.from_settings(settings)
    await ensure_topics(
        bootstrap, topics.specs(), partitions=settings.topic_partitions, replication=settings.topic_replication
    )
    producer = make_producer(bootstrap, settings)
    await producer.start()
    try:
        await producer.send_and_wait(topics.rules, AvroCodec.default().encode(RULE_SET, record), key=str(cid).encode())
    finally:
        await stop_producer(producer, settings.produce_timeout_s)


@cli.command()
def simulate(
    calls: Annotated[int, typer.Option(help="Concurrent calls to play")] = 10,
    duration: Annotated[float, typer.Option(help="Length of each call (s of real time)")] = 60.0,
    ramp: Annotated[float, typer.Option(help="Seconds over which the calls start")] = 10.0,
    gateway: Annotated[str | None, typer.Option(help="Gateway URL (default: SWITCHBOARD_GATEWAY_HOST/PORT)")] = None,
    key: Annotated[
        str | None, typer.Option(help="Tenant API key (default: the tenant's SWITCHBOARD_API_KEYS entry)")
    ] = None,
    cid: Annotated[int, typer.Option(help="Tenant (client id) of the calls")] = 1,
    protocols: Annotated[
        str, typer.Option(help="Comma list of telnyx, cresta, mediaservice")
    ] = "telnyx,cresta,mediaservice",
    policy_dir: Annotated[
        Path | None, typer.Option(help="Write the mediaservice domain's policy here (the gateway's policy dir)")
    ] = None,
    domain: Annotated[str, typer.Option(help="Mediaservice domain of the calls")] = "simulate.switchboard.local",
    callback_secret: Annotated[str | None, typer.Option(help="Mediaservice shared callback secret, if set")] = None,
    report: Annotated[Path | None, typer.Option(help="Also write the report as JSON here")] = None,
) -> None:
    """Play N realistic concurrent calls through the gateway's vendor protocols and report."""
    from infra.simulate import SimulateError
    from infra.simulate.runner import Options, run
    from infra.simulate.vendors import Target

    s = _settings()
    secret = key or (s.api_keys[cid].get_secret_value() if cid in s.api_keys else None)
    if secret is None:
        raise typer.BadParameter(f"no --key given and SWITCHBOARD_API_KEYS has no key for tenant {cid}")
    url = (gateway or f"http://{s.gateway_host}:{s.gateway_port}").rstrip("/")
    try:
        options = Options(
            calls=calls,
            duration_s=duration,
            ramp_s=ramp,
            target=Target(url, secret, cid, domain, callback_secret),
            protocols=tuple(p.strip() for p in protocols.split(",") if p.strip()),
            policy_dir=policy_dir,
        )
        stats = asyncio.run(run(options, echo=typer.echo))
    except SimulateError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(stats.report())
    if report is not None:
        report.write_text(json.dumps(stats.summary(), indent=2), encoding="utf-8")
    raise typer.Exit(1 if stats.failed else 0)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
