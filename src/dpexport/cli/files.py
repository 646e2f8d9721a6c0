"""``dpexport files``: see the module's command (CONTRACT §2)."""

from __future__ import annotations

import click

COMMANDS: tuple[click.Command, ...] = ()
