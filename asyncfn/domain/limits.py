"""Accepted ranges and defaults of function config and submissions (Function Compute's)."""

from __future__ import annotations

import re

TIMEOUT_S = (1, 86_400)
TIMEOUT_S_DEFAULT = 60
MEMORY_MB = (64, 32_768)
MEMORY_MB_DEFAULT = 512
INSTANCE_CONCURRENCY = (1, 200)
MIN_INSTANCES = (0, 100)
MAX_INSTANCES = (1, 1_000)
MAX_INSTANCES_DEFAULT = 4
MAX_CONCURRENCY = (1, 100_000)
"""Running tasks of one function across the cluster (None: no cap beyond the pools)."""
RATE_LIMIT = (0.01, 100_000.0)
"""Dispatches per second of one function, or submissions per second of one tenant."""
RATE_BURST = (1, 100_000)
MAX_RUNNING = (1, 1_000_000)
"""Running tasks of one tenant across the cluster."""
KEY_LIMIT = (1, 100_000)
"""Running tasks per value of one concurrency key."""
KEY_LIMITS_MAX = 3
DEBOUNCE_S_MAX = 86_400.0
MAX_RETRIES = (0, 8)
MAX_RETRIES_DEFAULT = 3
MAX_EVENT_AGE_S = (1, 7 * 86_400)
MAX_EVENT_AGE_S_DEFAULT = 86_400
RETRY_BASE_S_DEFAULT = 1.0
RETRY_MAX_S_DEFAULT = 300.0
PRIORITY = (-10, 10)
STOP_GRACE_S_DEFAULT = 2.0
DELAY_S_MAX = 7 * 86_400
CHAIN_DEPTH_MAX = 8
"""How many function destinations may chain one after another from one task."""
DELIVERY_BACKOFF_MAX_S = 600.0
DELIVERY_WINDOW_S = 86_400.0
"""A delivery is retried until this long after it was created, then dead."""

PAYLOAD_MAX_BYTES_DEFAULT = 1 << 20
CODE_MAX_BYTES = 100 << 20
BATCH_MAX_ITEMS = 1_000
TASK_ID_MAX_LEN = 128
SEQ_MAX = (1 << 63) - 1
"""The largest log sequence number or list cursor: stores keep them as signed 64-bit integers."""
LOG_MAX_BYTES_PER_TASK_DEFAULT = 10 << 20

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
TASK_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
HANDLER_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
