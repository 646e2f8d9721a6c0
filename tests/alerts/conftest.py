"""The alert tests' servers (``tests.alert_servers``) and a config pointing at them."""

from __future__ import annotations

from tests.alert_servers import (  # noqa: F401  (fixtures)
    alert_receiver,
    silent_server,
    smtp_server,
    smtp_tls_server,
)
