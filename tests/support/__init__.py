"""Test support: code only the tests run (a loopback HTTP server, raw-topic reads, the batch
reference of the feature engine). The benchmark's own helpers live in bench/; tests may import
those too. Nothing in the runtime packages imports tests or bench."""
