"""`posevla serve`: a checkpoint served to policy_node / RemotePolicy clients over a websocket
(posevla_core.serving.server; a GPU host needs no ROS)."""
from __future__ import annotations

import argparse

from posevla_core.serving.server import add_arguments as _server_arguments, main_args


def add_arguments(sv: argparse.ArgumentParser) -> None:
    _server_arguments(sv)


def run(a: argparse.Namespace) -> int:
    return main_args(a)
