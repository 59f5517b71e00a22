"""OCPP-J frames: parse, build, and rewrite the unique id without touching the rest.

OCPP-J 1.6 §4.1 / OCPP 2.0.1 part 4 §4.1: a frame is a JSON array, CALL
``[2, uniqueId, action, payload]``, CALLRESULT ``[3, uniqueId, payload]``, CALLERROR
``[4, uniqueId, errorCode, errorDescription, errorDetails]``. OCPP 2.1 part 4 §4.1.2 adds
CALLRESULTERROR ``[5, ...]`` (shaped like a CALLERROR) and SEND ``[6, ...]`` (shaped like a
CALL, never answered).

This is the proxy's hot path: frames are parsed once, and forwarded as the exact text that
arrived unless a field must change; then only that field's bytes change.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

CALL = 2
CALLRESULT = 3
CALLERROR = 4
CALLRESULTERROR = 5
SEND = 6

#: The message types of OCPP 1.6 and 2.0.1; OCPP 2.1 adds CALLRESULTERROR and SEND.
BASE_MESSAGE_TYPES = frozenset({CALL, CALLRESULT, CALLERROR})
#: Frames that are never answered, not even with a CALLERROR when malformed.
UNANSWERED_TYPES = frozenset({CALLRESULT, CALLERROR, CALLRESULTERROR, SEND})

# The head of a frame: message type id and unique id, as they stand in the text. Used to
# rewrite the unique id byte-exactly and to find it in a frame that does not parse as JSON.
_HEAD = re.compile(r'\s*\[\s*([0-9]+)\s*,\s*"((?:[^"\\]|\\.)*)"')

_scan = json.JSONDecoder().scan_once  # json's C scanner, as json.loads itself runs it


def _loads(raw: str) -> Any:
    """Parse JSON text exactly as ``json.loads`` does, minus its wrapper's two regex matches.

    The wrapper costs about 1 µs of a 2 µs parse of a small frame. Text with white space
    before or after the value, or that is not JSON, goes to ``json.loads``, which reads the
    former and raises for the latter.

    Raises:
        ValueError: not JSON (``json.JSONDecodeError``); RecursionError: nested too deep.
    """
    try:
        value, end = _scan(raw, 0)
    except StopIteration:
        return json.loads(raw)
    if end != len(raw):
        return json.loads(raw)
    return value


class _DuplicateKey(ValueError):
    """A JSON object repeats a key (raised while decoding, caught in :func:`parse_frame`)."""


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # The C scanner hands each object's pairs over in order; a dict of fewer entries than
    # pairs means a key came twice.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


_loads_unique_exact = json.JSONDecoder(object_pairs_hook=_unique_object).decode


def _key_count(value: Any) -> int:
    """How many keys the objects in a parsed JSON value hold, at any depth."""
    count = 0
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            count += len(item)
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
    return count


def _loads_unique(raw: str) -> Any:
    """Parse JSON text, refusing an object that repeats a key (:class:`_DuplicateKey`).

    Every key in the text ends in '":' unless white space follows its closing quote, and a
    string value can only add to that count: so when the count equals the keys parsed, or is
    at most one (most answers: ``{}``, a Heartbeat's ``currentTime``), no key came twice, and
    the fast parse stands. Otherwise the exact parser looks at every object.
    """
    value = _loads(raw)
    if '" ' not in raw and '"\t' not in raw and '"\n' not in raw and '"\r' not in raw:
        marked = raw.count('":')
        if marked <= 1 or marked == _key_count(value):
            return value
    return _loads_unique_exact(raw)


_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_encode_ascii = json.JSONEncoder(separators=(",", ":")).encode


def _dumps(value: Any) -> str:
    """Compact JSON text that is valid UTF-8 (sendable as a WebSocket text frame).

    A peer may send the JSON escape of a lone UTF-16 surrogate (e.g. in a unique id); written
    back unescaped it could not be encoded, so such text is written all-ASCII.
    """
    text = _encode(value)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return _encode_ascii(value)
    return text


@dataclass(slots=True)
class Frame:
    """One parsed OCPP-J frame.

    ``raw`` is the text as received; ``payload`` is the CALL, SEND or CALLRESULT payload (a dict);
    for a CALLERROR or CALLRESULTERROR ``error`` holds ``(errorCode, errorDescription,
    errorDetails)``. ``action`` is set for a CALL or SEND only.
    """

    raw: str
    message_type: int
    unique_id: str
    action: str | None = None
    payload: dict[str, Any] | None = None
    error: tuple[str, str, Any] | None = None


class FrameError(Exception):
    """A frame that is not a well-formed OCPP-J message (OCPP-J 1.6 §4.2.3).

    ``unique_id`` is set when it could be read, so that the sender can get a CALLERROR;
    ``message_type`` when the type id could be read (a malformed CALLRESULT is not answered).
    ``unknown_type`` marks a well-formed array whose message type id is not 2, 3 or 4;
    ``too_large`` a frame over the size limit, ``duplicate_key`` a JSON object that repeats a
    key. :attr:`limit` names the limit a frame broke, if any (for ``ocpp_proxy_limit_hits_total``).
    """

    def __init__(
        self,
        reason: str,
        unique_id: str | None = None,
        message_type: int | None = None,
        *,
        unknown_type: bool = False,
        too_large: bool = False,
        duplicate_key: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unique_id = unique_id
        self.message_type = message_type
        self.unknown_type = unknown_type
        self.too_large = too_large
        self.duplicate_key = duplicate_key

    @property
    def limit(self) -> str | None:
        """``max_frame_bytes`` or ``duplicate_json_keys`` when the frame broke one, else None."""
        if self.too_large:
            return "max_frame_bytes"
        return "duplicate_json_keys" if self.duplicate_key else None


def _type_number(digits: str) -> int | None:
    """The message type id written as ``digits``, or None if it is absurdly long.

    Python refuses to convert more than 4300 digits (ValueError), and SQLite stores no integer
    past 2**63; no message type id has more than one digit.
    """
    return int(digits) if len(digits) <= 9 else None


def _has_lone_surrogate(value: Any) -> bool:
    """Whether a string anywhere in the parsed JSON ``value`` (keys too) has a lone surrogate."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str:
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return True
        elif kind is dict:
            stack.extend(item)
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
    return False


def _head_of(raw: str) -> tuple[int | None, str | None]:
    """Read the message type id and unique id from the start of a frame that may be broken."""
    match = _HEAD.match(raw)
    if match is None:
        return None, None
    try:
        unique_id = _loads('"' + match.group(2) + '"')
    except ValueError:
        return _type_number(match.group(1)), None
    return _type_number(match.group(1)), unique_id


def parse_frame(
    raw: str,
    max_bytes: int | None = None,
    message_types: frozenset[int] = BASE_MESSAGE_TYPES,
    *,
    unique_keys: bool = False,
) -> Frame:
    """Parse one OCPP-J frame.

    Args:
        raw: the text of one WebSocket message.
        max_bytes: refuse a frame longer than this many bytes (UTF-8), if given.
        message_types: the message type ids the peer's OCPP version has.
        unique_keys: refuse a frame whose JSON repeats a key in any object, at any depth. The
            schema check, the arbiter and the audit read the last of two values, a charger's
            parser (cJSON) may act on the first: such a frame must not reach the charger. It
            costs about 1 µs more per small frame, so it is asked for backend frames (and
            charger frames in strict mode) only.

    Returns:
        The parsed :class:`Frame`.

    Raises:
        FrameError: the text is not JSON, not an array, or not of the shape of its message
            type (OCPP-J 1.6 §4.2.3 FormationViolation / 2.0.1 FormatViolation), too long,
            or (with ``unique_keys``) repeats a key (``duplicate_key`` set).
    """
    if max_bytes is not None and len(raw) * 4 > max_bytes:
        # Only frames that could be over the limit pay for measuring their UTF-8 size.
        size = len(raw.encode("utf-8", "surrogatepass"))
        if size > max_bytes:
            message_type, unique_id = _head_of(raw[:256])
            raise FrameError(
                f"frame of {size} bytes exceeds {max_bytes}",
                unique_id,
                message_type,
                too_large=True,
            )
    try:
        message = _loads_unique(raw) if unique_keys else _loads(raw)
    except _DuplicateKey as err:
        message_type, unique_id = _head_of(raw)
        raise FrameError(
            f"the JSON repeats the key {str(err)[:64]!r}",
            unique_id,
            message_type,
            duplicate_key=True,
        ) from None
    except (ValueError, RecursionError) as err:
        # RecursionError: nested deeper than the parser's recursion limit (about 1000 levels).
        message_type, unique_id = _head_of(raw)
        raise FrameError(f"not valid JSON: {err}", unique_id, message_type) from None
    if type(message) is not list or len(message) < 3:
        message_type, unique_id = _head_of(raw) if type(message) is list else (None, None)
        raise FrameError("not an OCPP-J array of at least 3 elements", unique_id, message_type)
    message_type, unique_id = message[0], message[1]
    if type(unique_id) is not str:
        raise FrameError("the unique id is not a string")
    if type(message_type) is not int:
        raise FrameError("the message type id is not a number", unique_id)
    if message_type not in message_types:
        raise FrameError(
            f"unknown message type id {message_type}", unique_id, message_type, unknown_type=True
        )
    if "\\u" in raw and _has_lone_surrogate(message):
        # Only a JSON escape can make one (the text itself is UTF-8). It is no Unicode text,
        # so no OCPP string: it could be neither stored (SQLite) nor sent on unescaped.
        raise FrameError("a string holds a lone UTF-16 surrogate", unique_id, message_type)
    if message_type in (CALL, SEND):
        if len(message) != 4:
            raise FrameError("a CALL has 4 elements", unique_id, message_type)
        action, payload = message[2], message[3]
        if type(action) is not str or not action:
            raise FrameError("the action is not a string", unique_id, message_type)
        if type(payload) is not dict:
            raise FrameError("the payload is not a JSON object", unique_id, message_type)
        return Frame(raw, message_type, unique_id, action, payload)
    if message_type == CALLRESULT:
        if len(message) != 3 or type(message[2]) is not dict:
            raise FrameError("a CALLRESULT is [3, uniqueId, {payload}]", unique_id, CALLRESULT)
        return Frame(raw, CALLRESULT, unique_id, payload=message[2])
    # CALLERROR or CALLRESULTERROR; errorDetails may be missing on some chargers.
    if len(message) not in (4, 5) or type(message[2]) is not str:
        raise FrameError(
            "a CALLERROR is [4, uniqueId, errorCode, errorDescription, {errorDetails}]",
            unique_id,
            message_type,
        )
    details = message[4] if len(message) == 5 else {}
    return Frame(raw, message_type, unique_id, error=(message[2], str(message[3]), details))


_HEAD_AND_ACTION = re.compile(r'\s*\[\s*([0-9]+)\s*,\s*"((?:[^"\\]|\\.)*)"\s*(?:,\s*"([^"\\]*)")?')


def frame_head(raw: str) -> tuple[int, str, str | None]:
    """The message type, unique id and (for a CALL or SEND) action of a frame, for logging.

    Reads only the start of the text; a frame whose start is unreadable gives ``(0, "", None)``.
    """
    match = _HEAD_AND_ACTION.match(raw)
    if match is None:
        return 0, "", None
    message_type = _type_number(match.group(1))
    if message_type is None:
        return 0, "", None
    return message_type, match.group(2), match.group(3) if message_type in (CALL, SEND) else None


def build_call(unique_id: str, action: str, payload: dict[str, Any]) -> str:
    """Return the text of a CALL frame (OCPP-J 1.6 §4.2.1)."""
    return _dumps([CALL, unique_id, action, payload])


def build_call_result(unique_id: str, payload: dict[str, Any]) -> str:
    """Return the text of a CALLRESULT frame (OCPP-J 1.6 §4.2.2)."""
    return _dumps([CALLRESULT, unique_id, payload])


def build_call_error(
    unique_id: str, code: str, description: str, details: dict[str, Any] | None = None
) -> str:
    """Return the text of a CALLERROR frame (OCPP-J 1.6 §4.2.3).

    The description is cut to 255 characters, the longest the 2.0.1 schema allows.
    """
    return _dumps([CALLERROR, unique_id, code, description[:255], details or {}])


def with_unique_id(raw: str, unique_id: str) -> str:
    """Return ``raw`` with its unique id replaced and every other byte kept.

    Args:
        raw: the text of a frame that :func:`parse_frame` accepted.
        unique_id: the new unique id.

    Raises:
        ValueError: the frame's head cannot be found (it did not come from ``parse_frame``).
    """
    match = _HEAD.match(raw)
    if match is None:
        raise ValueError("not an OCPP-J frame")
    return raw[: match.start(2)] + _dumps(unique_id)[1:-1] + raw[match.end(2) :]


def dumps(value: Any) -> str:
    """Encode a JSON value compactly, as the frames built here are."""
    return _dumps(value)
