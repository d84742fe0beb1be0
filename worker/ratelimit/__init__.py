"""Rate limits shared by every worker process, kept in Redis."""

from worker.ratelimit.gcra import Limit, RateLimiter, Reservation, limits_for

__all__ = ["Limit", "RateLimiter", "Reservation", "limits_for"]
