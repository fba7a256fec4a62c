"""Waiting for a server: Poisson arrivals at c servers, the tail of the wait, for sizing to a percentile target.

Erlang C gives the probability that an arrival waits in an M/M/c queue, C(c, a) with a = λ·S offered load; the
wait of those who wait is exponential with rate c/S − λ, so P(W > t) = C·exp(−(c/S − λ)·t) (Erlang 1917; the
M/M/c queue of any queueing text, e.g. Kleinrock, Queueing Systems vol. 1). Service that is not exponential is
taken by the Allen–Cunneen approximation (A. O. Allen, Probability, Statistics, and Queueing Theory, 2nd ed.:
W_q(M/G/c) ≈ W_q(M/M/c)·(1 + c_s²)/2 with c_s the service time's coefficient of variation), applied here to the
whole tail (the exponential's time scale stretched by the same factor), which keeps its mean right and is an
approximation for the percentile.
"""

from __future__ import annotations

import math


def erlang_c(servers: int, load: float) -> float:
    """Probability that an arrival waits: Erlang C from the Erlang B recursion (stable for thousands of servers)."""
    if load <= 0:
        return 0.0
    if load >= servers:
        return 1.0
    if servers - load > 8.0 * math.sqrt(load) + 8.0:
        # far above the load (Halfin–Whitt β = (c − a)/√a > 8): P(wait) ≈ φ(β)/(β·Φ(β)) < 1e-14, taken as none —
        # this keeps sizing pools of hundreds of thousands of sequence slots fast
        return 0.0
    b = 1.0
    for k in range(1, servers + 1):
        b = load * b / (k + load * b)
    return servers * b / (servers - load * (1 - b))


def wait_percentile(
    servers: int, arrival_rate: float, service_s: float, percentile: float, service_cv2: float = 1.0
) -> float:
    """Seconds that ``percentile`` % of arrivals wait at most (inf when the servers cannot keep up)."""
    if arrival_rate <= 0 or service_s <= 0:
        return 0.0
    load = arrival_rate * service_s
    if load >= servers:
        return math.inf
    tail = 1.0 - percentile / 100.0
    waits = erlang_c(servers, load)
    if waits <= tail:
        return 0.0
    drain = servers / service_s - arrival_rate  # rate the queue empties at
    return math.log(waits / tail) / drain * (1.0 + service_cv2) / 2.0


def mean_wait(servers: int, arrival_rate: float, service_s: float, service_cv2: float = 1.0) -> float:
    """Mean wait (Allen–Cunneen)."""
    load = arrival_rate * service_s
    if load >= servers:
        return math.inf
    return erlang_c(servers, load) / (servers / service_s - arrival_rate) * (1.0 + service_cv2) / 2.0
