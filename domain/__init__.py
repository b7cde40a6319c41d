"""Pure domain code: event contract, flow decisions, token maths, message building.

Nothing in this package performs I/O; ``tests/unit/test_domain.py`` enforces it.
"""
