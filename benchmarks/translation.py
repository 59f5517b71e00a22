"""Translation benchmark: what translating one message costs the relay, per message (issue 13).

Run by hand from the repository root (a few seconds)::

    python benchmarks/translation.py              # 20,000 messages per case
    python benchmarks/translation.py --count 2000

Method
------
For each case, one :class:`~ocpp_proxy.translation.Translator` (as the relay keeps per link)
translates ``--count`` charger CALLs, each under its own unique id, exactly as the relay does
for a backend of another version: ``LinkTranslations.render`` (translate the payload, build the
CALL's JSON text) and ``LinkTranslations.answer_from_backend`` (translate the backend's
CALLRESULT and build the charger's frame). What is timed is that work per message, from the
parsed charger frame to the answer frame the relay hands on; it is what translation adds on top
of relaying (which parses and sends the frames whatever the version).

The baseline is what an untranslated link does at the same two points: the dictionary lookup
that finds no translator (``LinkTranslations.get``); nothing else of the translation code runs.

Caveats: one process, no I/O; CPU frequency and load move the figures by tens of percent.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from ocpp_proxy.clock import SystemClock
from ocpp_proxy.protocol.frames import build_call, build_call_result, parse_frame
from ocpp_proxy.protocol.versions import OcppVersion
from ocpp_proxy.relay.backend_link import Delivery
from ocpp_proxy.relay.translated_links import LinkTranslations
from ocpp_proxy.translation import Translator

TS = "2026-01-01T00:00:00Z"
METER_16 = {
    "connectorId": 1,
    "transactionId": 7,
    "meterValue": [
        {
            "timestamp": TS,
            "sampledValue": [
                {"value": "1500", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                {"value": "7400", "measurand": "Power.Active.Import", "unit": "W"},
            ],
        }
    ],
}
STATUS_16 = {"connectorId": 1, "errorCode": "NoError", "status": "Available", "timestamp": TS}
EVENT_2X = {
    "eventType": "Updated",
    "timestamp": TS,
    "triggerReason": "MeterValuePeriodic",
    "seqNo": 1,
    "transactionInfo": {"transactionId": "tx-1"},
    "meterValue": [
        {
            "timestamp": TS,
            "sampledValue": [
                {"value": 1500, "measurand": "Energy.Active.Import.Register"},
                {"value": 7400, "measurand": "Power.Active.Import", "unitOfMeasure": {"unit": "W"}},
            ],
        }
    ],
}


class _Link:
    id = "b"

    def __init__(self, version: OcppVersion) -> None:
        self.version = version


def _case_16_to_2x(
    action: str, payload: dict[str, Any], tx: int | None
) -> Callable[[int], tuple[LinkTranslations, Translator, Delivery]]:
    def setup(_n: int) -> tuple[LinkTranslations, Translator, Delivery]:
        links = LinkTranslations("CP", clock=SystemClock(), known_transactions=lambda: [])
        links.update(OcppVersion.V16, [_Link(OcppVersion.V201)])  # type: ignore[list-item]
        translator = links.get("b")
        assert translator is not None
        if tx is not None:  # a running transaction, as in a session
            translator.charger_call(
                "start",
                "StartTransaction",
                {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": TS},
                tx,
            )
        frame = parse_frame(build_call("u", action, payload))
        return links, translator, Delivery(frame, None, transaction_id=tx)  # type: ignore[arg-type]

    return setup


def _case_2x_to_16() -> Callable[[int], tuple[LinkTranslations, Translator, Delivery]]:
    def setup(_n: int) -> tuple[LinkTranslations, Translator, Delivery]:
        links = LinkTranslations("CP", clock=SystemClock(), known_transactions=lambda: [])
        links.update(OcppVersion.V201, [_Link(OcppVersion.V16)])  # type: ignore[list-item]
        translator = links.get("b")
        assert translator is not None
        started = dict(
            EVENT_2X, eventType="Started", seqNo=0, idToken={"idToken": "T", "type": "ISO14443"}
        )
        translator.charger_call("start", "TransactionEvent", started)
        translator.backend_answer(
            "start", {"transactionId": 5, "idTagInfo": {"status": "Accepted"}}
        )
        frame = parse_frame(build_call("u", "TransactionEvent", EVENT_2X))
        return links, translator, Delivery(frame, None)  # type: ignore[arg-type]

    return setup


def _run(setup: Callable[[int], Any], answer: dict[str, Any], count: int) -> list[float]:
    links, translator, template = setup(count)
    answer_frame = parse_frame(build_call_result("u", answer))
    samples: list[float] = []
    for n in range(count):
        frame = parse_frame(template.frame.raw.replace('"u"', f'"u{n}"', 1))
        delivery = Delivery(frame, None, transaction_id=template.transaction_id)  # type: ignore[arg-type]
        start = time.perf_counter_ns()
        links.render(translator, delivery)
        links.answer_from_backend(translator, delivery, answer_frame)
        samples.append((time.perf_counter_ns() - start) / 1000)
    return samples


def _baseline(count: int) -> list[float]:
    links = LinkTranslations("CP", clock=SystemClock(), known_transactions=lambda: [])
    links.update(OcppVersion.V16, [_Link(OcppVersion.V16)])  # type: ignore[list-item]
    samples = []
    for _ in range(count):
        start = time.perf_counter_ns()
        links.get("b")
        links.get("b")
        samples.append((time.perf_counter_ns() - start) / 1000)
    return samples


def main() -> None:
    """Print the per-message cost of each case (µs, p50 and p99)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    args = parser.parse_args()
    cases = [
        ("untranslated link (the lookup only)", None, None),
        (
            "1.6 MeterValues -> 2.x TransactionEvent Updated",
            _case_16_to_2x("MeterValues", METER_16, 7),
            {},
        ),
        (
            "1.6 StatusNotification -> 2.x StatusNotification",
            _case_16_to_2x("StatusNotification", STATUS_16, None),
            {},
        ),
        ("2.x TransactionEvent Updated -> 1.6 MeterValues", _case_2x_to_16(), {}),
    ]
    print(f"{'case':52} {'p50 us':>8} {'p99 us':>8}")
    for name, setup, answer in cases:
        samples = _baseline(args.count) if setup is None else _run(setup, answer or {}, args.count)
        samples.sort()
        p50 = statistics.median(samples)
        p99 = samples[int(len(samples) * 0.99) - 1]
        print(f"{name:52} {p50:8.2f} {p99:8.2f}")


if __name__ == "__main__":
    main()
