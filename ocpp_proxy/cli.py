"""The ``ocpp-proxy`` command: run the proxy, or simulate a charger against it.

``ocpp-proxy [--config PATH] [--host HOST] [--port PORT] [--ingress-port PORT] [--data-dir DIR]
[--log-level LEVEL] [--keep-running]`` runs the proxy (embedded defaults without ``--config``).
``ocpp-proxy token [--config PATH] [--data-dir DIR] [--regenerate]`` prints the REST API's
token. ``ocpp-proxy backup snapshot|done --data-dir DIR`` are the Home Assistant app's
``backup_pre`` / ``backup_post`` (:mod:`ocpp_proxy.store.backup`). ``ocpp-proxy simulate-charger
...`` runs the bundled charger simulator. Exit status 2 means a bad command line or config.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import ssl
import sys
from collections.abc import Sequence
from typing import Any

from ocpp_proxy import __version__
from ocpp_proxy.config import ConfigError, ProxyConfig, load_config
from ocpp_proxy.gc_policy import GcPolicy
from ocpp_proxy.store import StoreError

EXIT_CONFIG_ERROR = 2
EXIT_STORE_ERROR = 1


def _run_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ocpp-proxy",
        description="Transparent multi-backend OCPP proxy. "
        "Also: 'ocpp-proxy token' prints the REST API's token, 'ocpp-proxy backup "
        "snapshot|done' makes a backup's database copy, 'ocpp-proxy simulate-charger --help' "
        "runs the charger simulator.",
    )
    parser.add_argument("--config", help="YAML or JSON config file (default: embedded defaults)")
    parser.add_argument("--host", help="address to listen on (default 0.0.0.0)")
    parser.add_argument("--port", type=int, help="port to listen on (default 9000)")
    parser.add_argument(
        "--ingress-port",
        type=int,
        help="also listen here, plain HTTP, for Home Assistant's ingress proxy only (default none)",
    )
    parser.add_argument("--data-dir", help="folder for the proxy's data (default ./data)")
    parser.add_argument(
        "--log-level", help="DEBUG, INFO, WARNING, ERROR or CRITICAL (default INFO)"
    )
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="log options that conflict with each other and run without what they concern, "
        "instead of exiting (the Home Assistant app uses this: no restart loop)",
    )
    parser.add_argument("--version", action="version", version=f"ocpp-proxy {__version__}")
    return parser


def _token_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ocpp-proxy token",
        description="Print the REST API's token: the api_token option, else the generated one "
        "kept in the data dir (generated now if there is none yet).",
    )
    parser.add_argument("--config", help="the proxy's config file (default: embedded defaults)")
    parser.add_argument("--data-dir", help="the proxy's data folder (default: the config's)")
    parser.add_argument(
        "--regenerate",
        action="store_true",
        help="replace the generated token (a running proxy takes it at its next start)",
    )
    return parser


def _backup_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ocpp-proxy backup",
        description="snapshot: write a consistent copy of the database for a backup (safe while "
        "the proxy runs); done: remove it once the backup has copied it.",
    )
    parser.add_argument("step", choices=("snapshot", "done"))
    parser.add_argument("--data-dir", required=True, help="the proxy's data folder")
    return parser


def _simulator_parser() -> argparse.ArgumentParser:
    from ocpp_proxy.simulator.run import add_arguments

    parser = argparse.ArgumentParser(
        prog="ocpp-proxy simulate-charger",
        description="Simulate a charger: boot, heartbeat, status, authorize, transactions with "
        "meter values; answers remote commands.",
    )
    add_arguments(parser)
    return parser


def load(args: argparse.Namespace) -> ProxyConfig:
    """The config file (or the defaults) with the command line's overrides applied.

    Raises:
        ConfigError: the file or an override is invalid.
    """
    config = load_config(args.config, set_aside=_log_set_aside if args.keep_running else None)
    overrides = {
        key: value
        for key, value in (
            ("host", args.host),
            ("port", args.port),
            ("ingress_port", args.ingress_port),
            ("data_dir", args.data_dir),
            ("log_level", args.log_level),
        )
        if value is not None
    }
    overrides.update(mqtt_from_environment())
    return config.with_overrides(**overrides) if overrides else config


def _log_set_aside(error: ConfigError) -> None:
    # Logging is not set up yet when the config is read: straight to stderr, as the log does.
    print(f"ocpp-proxy: config problem, running without it: {error}", file=sys.stderr)


#: Environment variables the Home Assistant app's run.sh sets from the Supervisor's MQTT service
#: (environment, not flags, so that the password does not show in the process list).
MQTT_ENVIRONMENT = {
    "mqtt_host": "OCPP_PROXY_MQTT_HOST",
    "mqtt_port": "OCPP_PROXY_MQTT_PORT",
    "mqtt_username": "OCPP_PROXY_MQTT_USERNAME",
    "mqtt_password": "OCPP_PROXY_MQTT_PASSWORD",
}


def mqtt_from_environment() -> dict[str, Any]:
    """The MQTT options set in the environment (``OCPP_PROXY_MQTT_*``), as config overrides.

    Raises:
        ConfigError: ``OCPP_PROXY_MQTT_PORT`` is not a number.
    """
    found: dict[str, Any] = {}
    for key, variable in MQTT_ENVIRONMENT.items():
        value = os.environ.get(variable)
        if not value:
            continue
        if key == "mqtt_port":
            if not value.isdigit():
                raise ConfigError(variable, f"expected a port number, got {value!r}")
            found[key] = int(value)
        else:
            found[key] = value
    return found


def serve(config: ProxyConfig) -> None:
    """Run the proxy until interrupted."""
    from aiohttp import web

    from ocpp_proxy.server.app import create_app

    log = logging.getLogger("ocpp_proxy")
    services = ", ".join(config.backend_ids) or "none: answering the charger locally"
    log.info(
        "ocpp-proxy %s on %s:%s; backends: %s", __version__, config.host, config.port, services
    )
    from ocpp_proxy.security.tls import server_ssl_context

    try:
        ssl_context = server_ssl_context(config)
    except (OSError, ssl.SSLError) as err:
        raise ConfigError("ssl_certfile", f"cannot load the TLS certificate or key: {err}") from err
    scheme = "wss" if ssl_context else "ws"
    log.info(
        "chargers connect to %s://<this host>:%s/charger/<charge point id>", scheme, config.port
    )
    if config.ingress_port:
        log.info("Home Assistant ingress: plain HTTP on port %s", config.ingress_port)
    loop = new_event_loop()
    log.debug("event loop: %s", type(loop).__module__)
    asyncio.set_event_loop(loop)
    main = loop.create_task(_serve(create_app(config), config, ssl_context))
    try:
        loop.run_until_complete(main)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        if not main.done():
            main.cancel()  # runs _serve's cleanup: the drain and the final SQLite flush
            with contextlib.suppress(asyncio.CancelledError, web.GracefulExit, KeyboardInterrupt):
                loop.run_until_complete(main)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        asyncio.set_event_loop(None)


async def _serve(app: Any, config: ProxyConfig, ssl_context: ssl.SSLContext | None) -> None:
    """Serve ``app`` on the main port and the ingress port until cancelled or signalled."""
    from aiohttp import web

    from ocpp_proxy.security.connections import server_options
    from ocpp_proxy.server.listeners import start_listeners

    # As web.run_app, but with two listeners: TLS (or not) on the main port, never on ingress.
    runner = web.AppRunner(app, handle_signals=True, **server_options(config))
    await runner.setup()
    gc_policy = GcPolicy()
    try:
        await start_listeners(runner, config, ssl_context)
        gc_policy.install()  # full collections walk only what is new (docs/benchmarks.md)
        await asyncio.Event().wait()  # until a signal (GracefulExit) or cancellation
    finally:
        gc_policy.uninstall()
        await runner.cleanup()


def new_event_loop() -> asyncio.AbstractEventLoop:
    """The proxy's event loop: uvloop where it is installed, else asyncio's own.

    uvloop takes about a third off the time the proxy adds to a round trip (docs/benchmarks.md).
    """
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ocpp-proxy`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "simulate-charger":
        from ocpp_proxy.simulator.run import main_async

        args = _simulator_parser().parse_args(argv[1:])
        try:
            return asyncio.run(main_async(args))
        except KeyboardInterrupt:
            return 130
    if argv and argv[0] == "token":
        return token_command(_token_parser().parse_args(argv[1:]))
    if argv and argv[0] == "backup":
        return backup_command(_backup_parser().parse_args(argv[1:]))
    args = _run_parser().parse_args(argv)
    try:
        config = load(args)
    except ConfigError as err:
        print(f"ocpp-proxy: config error: {err}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    logging.basicConfig(
        level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from ocpp_proxy.security.redaction import install as install_redaction

    install_redaction(config)
    try:
        serve(config)
    except StoreError as err:
        print(f"ocpp-proxy: database error: {err}", file=sys.stderr)
        return EXIT_STORE_ERROR
    except ConfigError as err:  # the TLS files, read only when serving
        print(f"ocpp-proxy: config error: {err}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    return 0


def token_command(args: argparse.Namespace) -> int:
    """``ocpp-proxy token``: print the token (generate one if none is kept yet); exit status."""
    from pathlib import Path

    from ocpp_proxy.web.auth import load_or_create_token, write_new_token

    try:
        config = load_config(args.config)
    except ConfigError as err:
        print(f"ocpp-proxy: config error: {err}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    if config.api_token:
        if args.regenerate:
            print("ocpp-proxy: the token is the api_token option: change it there", file=sys.stderr)
            return EXIT_CONFIG_ERROR
        print(config.api_token)
        return 0
    data_dir = Path(args.data_dir or config.data_dir)
    try:
        token = write_new_token(data_dir) if args.regenerate else load_or_create_token(data_dir)[0]
    except OSError as err:
        print(f"ocpp-proxy: cannot keep the token in {data_dir}: {err}", file=sys.stderr)
        return EXIT_STORE_ERROR
    print(token)
    return 0


def backup_command(args: argparse.Namespace) -> int:
    """``ocpp-proxy backup snapshot|done``: the app's backup_pre / backup_post; exit status."""
    from pathlib import Path

    from ocpp_proxy.store.backup import discard_snapshot, snapshot

    data_dir = Path(args.data_dir)
    if args.step == "done":
        discard_snapshot(data_dir)
        return 0
    try:
        written = snapshot(data_dir)
    except StoreError as err:
        print(f"ocpp-proxy: backup: {err}", file=sys.stderr)
        return EXIT_STORE_ERROR
    print(f"ocpp-proxy: backup: {written or 'no database yet: nothing to snapshot'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
