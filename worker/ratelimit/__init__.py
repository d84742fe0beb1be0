"""Rate limits shared by every worker process, kept in Redis."""

from worker.ratelimit.gcra import Admission, AdmissionAnswer, Limit, RateLimiter, Reservation, limits_for

__all__ = ["Admission", "AdmissionAnswer", "Limit", "RateLimiter", "Reservation", "limits_for"]
