"""Leave the process when a stream agent fails, instead of letting faust restart the agent.

Why: faust restarts a crashed agent in place, without re-delivering the batch it was working on
and with the agent's in-memory state as the error left it; the batch's offsets may then be
committed with nothing written for them — a silent loss. Exiting makes the supervisor (compose,
systemd, ``oddsflow worker all``, the chaos runner) start a fresh worker that resumes from the
committed offsets and the durable state.
"""

from __future__ import annotations

import logging
import os

#: Exit status after an error in an agent or timer (sysexits' EX_SOFTWARE).
EX_SOFTWARE = 70


def exit_for_restart(log: logging.Logger, role: str, where: str) -> None:
    """Log the current exception and exit at once (no faust shutdown: it would commit)."""
    log.critical(
        "%s: error in %s; exiting to restart from the committed state", role, where, exc_info=True
    )
    logging.shutdown()
    os._exit(EX_SOFTWARE)
