"""The OCPP JSON schemas, as shipped by the ``ocpp`` library, loaded lazily and cached.

The files are the official schemas: OCPP-J 1.6 (``Action.json`` / ``ActionResponse.json``,
draft-04, the security-whitepaper messages draft-06) and OCPP 2.0.1 / 2.1 part 3
(``ActionRequest.json`` / ``ActionResponse.json``, draft-06, UTF-8 with a byte order mark, and
``$ref: "#/definitions/..."`` references into the same file). Which package holds them is
``VersionFacts.schema_package``; the request file suffix is ``VersionFacts.request_suffix``.

Nothing is read at import time. The directory listing of each version is read once; a schema
file is read on first use and then kept. Only names that are in the listing are ever looked
up or cached, so action names taken from the wire (which may be anything) can neither reach
outside the schema directory nor grow the caches.

The dicts returned are shared by all callers: treat them as read-only.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from typing import Any

from ocpp_proxy.protocol.versions import OcppVersion

_JSON = ".json"
_RESPONSE_SUFFIX = "Response"


def request_schema(version: OcppVersion, action: str) -> dict[str, Any] | None:
    """Return the JSON schema of the payload of a CALL ``action`` in ``version``.

    In: an OCPP version and an action name as it stands in a CALL frame (OCPP-J 1.6 §4.2.1;
    OCPP 2.0.1 part 4 §4.2.1), e.g. ``"BootNotification"``.
    Out: the parsed schema (``BootNotification.json`` for 1.6, ``BootNotificationRequest.json``
    for 2.0.1 and 2.1; read-only, shared), or None if the library has no schema of that name.

    OCPP 2.1's SEND-only message NotifyPeriodicEventStream (OCPP 2.1 part 4, SEND message type)
    has its schema without the ``Request`` suffix; it is found under its plain name.
    """
    if action not in _actions(version):
        return None
    name = action + version.facts.request_suffix + _JSON
    if name not in _listing(version):
        name = action + _JSON
    return _load(version.facts.schema_package, name)


def response_schema(version: OcppVersion, action: str) -> dict[str, Any] | None:
    """Return the JSON schema of the CALLRESULT payload answering a CALL ``action``.

    In: an OCPP version and an action name. Out: the parsed ``<action>Response.json`` schema of
    that version (the payload of a CALLRESULT, OCPP-J 1.6 §4.2.2; OCPP 2.0.1 part 4 §4.2.2;
    read-only, shared), or None if the library has no such schema.
    """
    name = action + _RESPONSE_SUFFIX + _JSON
    if name not in _listing(version):
        return None
    return _load(version.facts.schema_package, name)


def actions(version: OcppVersion) -> frozenset[str]:
    """Return the names of all actions of ``version`` that have a request schema.

    In: an OCPP version. Out: the action names (e.g. ``"BootNotification"``) for which
    :func:`request_schema` returns a schema: every CALL of OCPP 1.6 (chapters 4 and 5, plus
    the security whitepaper's messages), OCPP 2.0.1 or OCPP 2.1 (part 3 schemas), in both
    directions, and 2.1's SEND-only NotifyPeriodicEventStream.
    """
    return _actions(version)


@functools.cache
def _actions(version: OcppVersion) -> frozenset[str]:
    suffix = version.facts.request_suffix
    names: set[str] = set()
    for file in _listing(version):
        stem = file.removesuffix(_JSON)
        if stem.endswith(_RESPONSE_SUFFIX):
            continue
        if suffix and stem.endswith(suffix):
            stem = stem.removesuffix(suffix)
        names.add(stem)
    return frozenset(names)


@functools.cache
def _listing(version: OcppVersion) -> frozenset[str]:
    """Return the schema file names of ``version``'s schema package."""
    root = _folder(version.facts.schema_package)
    return frozenset(
        entry.name for entry in root.iterdir() if entry.name.endswith(_JSON) and entry.is_file()
    )


def _folder(package: str) -> importlib.resources.abc.Traversable:
    """The folder of ``package`` (``ocpp.v16.schemas``), found from the top package only.

    ``files("ocpp.v16.schemas")`` would import ``ocpp.v16``, and with it the ``ocpp`` library's
    charge point, ``jsonschema`` and its dependencies (about 3 MB the proxy does not use).
    """
    top, *rest = package.split(".")
    return importlib.resources.files(top).joinpath(*rest)


@functools.cache
def _load(package: str, filename: str) -> dict[str, Any]:
    """Read and parse one schema file (the 2.x files start with a BOM: ``utf-8-sig``)."""
    text = _folder(package).joinpath(filename).read_text(encoding="utf-8-sig")
    schema: dict[str, Any] = json.loads(text)
    return schema
