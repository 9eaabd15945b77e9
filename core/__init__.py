"""The core floor: what every stage shares and nothing above it owns.

Settings, the topic catalog, Kafka client configuration, the one set of Kafka helpers (admin,
offsets and watermarks, read-to-end), run isolation, argparse types, the MLB domain
(``core.domain``) and the raw sources' formats (``core.formats``). It imports only ``schemas``
and third-party libraries; the stages (producers, streams, sinks) and the application
(``oddsflow``) import it.
"""
