"""The asyncfn benchmark harness: fresh servers on loopback, one table of medians."""
