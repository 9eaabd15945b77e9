"""``oddsflow bench``: throughput, latency and memory of every stage, end to end, with baselines.

Entry points for the command line: :func:`oddsflow.bench.cli.add_bench_arguments` and
:func:`oddsflow.bench.cli.run_bench`. Also runnable as ``python -m oddsflow.bench``.
"""
