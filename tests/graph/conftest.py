"""Fixtures from other test packages that the graph tests reuse.

``make_ner_config`` (and the ``ner_jsonl`` it trains on) live with the tagging tests; they are
imported here so that tests/graph sees them without copying the config's shape.
"""

from tests.tagging.conftest import make_ner_config, ner_jsonl  # noqa: F401  (re-exported fixtures)
