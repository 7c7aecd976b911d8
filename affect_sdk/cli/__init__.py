"""The `affect` command line: live, predict, batch, eval, train, export, doctor, serve (one module per command
group)."""
from __future__ import annotations

from affect_sdk.cli import batch, evaluate, live, predict, tools, train  # noqa: F401  (each registers its commands)
from affect_sdk.cli.common import app, friendly, install_signal_handlers, print_json_line  # noqa: F401


def main() -> None:
    install_signal_handlers()
    app()
