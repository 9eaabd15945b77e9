"""``oddsflow web``: line-movement charts with steam/RLM/sharp markers, and pipeline health."""

from oddsflow.web.app import add_web_arguments, create_app, run_web

__all__ = ["add_web_arguments", "create_app", "run_web"]
