"""spyglass's benchmark: a fleet on a slow network, measured against the round-trip floor.

    python -m bench            the defaults (N=300, M=100, S=20, 25 ms each way) and the sweeps
    python -m bench --quick    small fleets, one run each

See bench/README.md and docs/performance.md.
"""
