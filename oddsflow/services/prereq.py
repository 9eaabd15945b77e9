"""Checks that turn a missing prerequisite into one sentence saying what to do."""

from __future__ import annotations

import shutil
import socket


class PrerequisiteError(SystemExit):
    """Raised with a one-line, actionable message; the CLI prints it and exits non-zero."""


def require_binary(name: str, how: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise PrerequisiteError(f"oddsflow: `{name}` is not installed or not on PATH; {how}")
    return path


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def require_free_port(host: str, port: int, what: str, key: str) -> None:
    if not port_is_free(host, port):
        raise PrerequisiteError(
            f"oddsflow: port {host}:{port} for {what} is already in use by another program; "
            f"stop it or choose another port with {key}"
        )
