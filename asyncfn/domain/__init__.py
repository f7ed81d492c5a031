"""Pure domain: states, models, outcomes, policies, limits and errors; no I/O, no asyncio."""
