"""Operating the pipeline: lag monitoring, subscribers, health, replay, topology, metrics.

Each command module offers ``add_<cmd>_arguments(parser)`` and ``run_<cmd>(settings, args)`` so
the CLI wires it in one line; the functions underneath are importable for tests and scripts.
"""
