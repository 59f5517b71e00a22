"""``python -m ocpp_proxy``: the same as the ``ocpp-proxy`` command."""

from __future__ import annotations

import sys

from ocpp_proxy.cli import main

sys.exit(main())
