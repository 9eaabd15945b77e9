"""Benchmark-only code that is not part of the product (peers to compare oddsflow against)."""
