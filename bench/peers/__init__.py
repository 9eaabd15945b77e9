"""Peers: oddsflow's stage work written in other stream-processing libraries, as their users would.

They exist only so that ``oddsflow bench`` can put oddsflow's figures beside a realistic
alternative on the same input (issue 17); nothing in the pipeline imports them.
"""
