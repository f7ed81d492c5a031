"""A claim's quota as every store applies it: from what runs and the stored rate bucket, how
many tasks the claim may take (`check`), then the bucket to write back and when it next holds
a token (`settle`). The SQL that reads and writes those lives in each store's flow.py."""

from __future__ import annotations

from dataclasses import dataclass

from asyncfn.domain.flow import ClaimQuota, allowed_by_quota, refill

CLOCK_SLACK_S = 1e-6
"""Tokens within a microsecond's refill of a whole one count as whole. POSIX times near 1.7e9
carry ~2.4e-7 s of float error, so a bucket that ought to hold exactly 3 tokens may hold
2.9999988: without the slack a claim would lose that token to rounding. What the slack lends
is owed (the bucket may go that far below zero), so the rate still holds over time."""


def _whole(tokens: float, rate: float) -> float:
    return tokens + rate * CLOCK_SLACK_S


@dataclass(frozen=True, slots=True)
class Bucket:
    """A function's dispatch-rate bucket as stored: its tokens at `updated_at`."""

    tokens: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class QuotaCheck:
    """What a quota allows one claim: at most `allowed` tasks; `capped`: the quota, not the
    claim's limit, bounds it; `bucket`: the rate bucket refilled to now (None: no rate)."""

    allowed: int
    capped: bool
    bucket: Bucket | None


def check(
    limit: int,
    quota: ClaimQuota,
    now: float,
    *,
    function_running: int = 0,
    tenant_running: int = 0,
    stored: Bucket | None = None,
) -> QuotaCheck:
    """The check before a claim. A missing bucket is a full one; a bucket's time never moves
    back (a node whose clock lags refills nothing and keeps the stored time)."""
    bucket: Bucket | None = None
    whole: float | None = None
    if quota.rate is not None:
        if stored is None:
            bucket = Bucket(quota.burst, now)
        else:
            at = max(stored.updated_at, now)
            tokens = refill(stored.tokens, stored.updated_at, at, quota.rate, quota.burst)
            bucket = Bucket(tokens, at)
        whole = _whole(bucket.tokens, quota.rate)
    allowed, capped = allowed_by_quota(
        limit,
        quota,
        function_running=function_running,
        tenant_running=tenant_running,
        tokens=whole,
    )
    return QuotaCheck(allowed, capped, bucket)


def settle(
    checked: QuotaCheck, quota: ClaimQuota, claimed: int
) -> tuple[Bucket | None, float | None]:
    """After claiming `claimed` tasks: the bucket to write (None: nothing to write, as when
    nothing was claimed: the stored bucket refills to the same tokens) and when it holds a
    whole token again (None: it holds one now, or the claim is not rate-bound)."""
    bucket = checked.bucket
    if bucket is None or quota.rate is None:
        return None, None
    after = Bucket(bucket.tokens - claimed, bucket.updated_at)
    retry_at = None
    if _whole(after.tokens, quota.rate) < 1 and quota.rate > 0:
        retry_at = after.updated_at + (1 - after.tokens) / quota.rate
    return (after if claimed else None), retry_at
