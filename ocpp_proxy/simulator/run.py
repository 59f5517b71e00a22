"""``ocpp-proxy simulate-charger``: play whole charging sessions against a charger endpoint."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from ocpp.exceptions import OCPPError
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from ocpp_proxy.simulator.charger import SimulatedCharger
from ocpp_proxy.simulator.common import SUPPORTED_VERSIONS, SimulationError, charger_url


async def run_simulation(
    url: str,
    charge_point_id: str = "CP_1",
    version: str = "1.6",
    transactions: int = 1,
    log: Callable[[str], None] = print,
    *,
    meter_samples: int = 3,
) -> int:
    """Connect to ``url`` as ``charge_point_id`` and play :meth:`SimulatedCharger.run_session`.

    ``url`` is a charger endpoint such as ``ws://localhost:9000/charger``; ``/<id>`` is
    appended unless it already ends with the id (:func:`charger_url`).  ``transactions`` and
    ``meter_samples`` are as in ``run_session``.  Every exchange is reported through ``log``.
    Returns the process exit code: 0 when the session completed, 1 when the connection could
    not be opened or was lost, or the CSMS refused the session (the reason is logged).
    """
    target = charger_url(url, charge_point_id)
    try:
        charger = await SimulatedCharger.connect(target, charge_point_id, version, log=log)
    except ValueError as exc:
        log(f"error: {exc}")
        return 1
    except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
        log(f"error: cannot connect to {target}: {exc or type(exc).__name__}")
        return 1
    async with charger:
        try:
            created = await charger.run_session(transactions, meter_samples)
        except (ConnectionError, ConnectionClosed) as exc:
            log(f"error: connection to {target} lost: {exc}")
            return 1
        except TimeoutError as exc:
            log(f"error: no answer from {target}: {exc}")
            return 1
        except (SimulationError, OCPPError) as exc:
            log(f"error: session refused by {target}: {exc}")
            return 1
    log(f"done: {len(created)} transaction(s) {created}")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``simulate`` options to ``parser``.

    ``--url`` (required; the charger endpoint, ``/<id>`` is appended), ``--id`` (charge point
    id, default CP_1), ``--version`` (1.6, 2.0.1 or 2.1; default 1.6), ``--transactions`` (int,
    default 1), ``--meter-samples`` (meter samples per transaction, default 3).
    """
    parser.add_argument(
        "--url",
        required=True,
        help="charger endpoint, e.g. ws://localhost:9000/charger (the id is appended)",
    )
    parser.add_argument("--id", default="CP_1", help="charge point id (default: %(default)s)")
    parser.add_argument(
        "--version",
        default="1.6",
        choices=SUPPORTED_VERSIONS,
        help="OCPP version to speak (default: %(default)s)",
    )
    parser.add_argument(
        "--transactions",
        type=_non_negative_int,
        default=1,
        help="number of charging transactions to play (default: %(default)s)",
    )
    parser.add_argument(
        "--meter-samples",
        type=_non_negative_int,
        default=3,
        help="meter samples per transaction (default: %(default)s)",
    )


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


async def main_async(args: argparse.Namespace) -> int:
    """Run the simulation that parsed :func:`add_arguments` options describe.

    Returns the exit code of :func:`run_simulation` (0 success, 1 failure).
    """
    return await run_simulation(
        args.url,
        args.id,
        args.version,
        args.transactions,
        meter_samples=args.meter_samples,
    )
