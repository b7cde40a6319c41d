"""Pure domain code: event contract, flow decisions, token maths, message building.

Nothing in this package performs I/O; ``tests/test_domain_purity.py`` enforces it.
"""
