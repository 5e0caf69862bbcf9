"""Hand versions of the OSLA formulas (unit scale; the cost is in +-1 units, so compare 4 * gain) and a
scripted ``generate`` whose rewards are fixed in advance, for the budget tests."""

import numpy as np


def hand_s2(v, k, variance="worst"):
    if variance == "worst":
        return 1.0 / (4.0 * k)  # worst case of a 0/1 mean
    p = (k * v + 0.5) / (k + 1.0)
    return p * (1.0 - p) / k


def hand_d2(v, k, prior, prior_var=None, variance="worst"):
    d2 = max(0.0, (v - prior) ** 2 - hand_s2(v, k, variance))
    return d2 if prior_var is None else max(d2, prior_var)


def hand_mse(d2, s2):
    return d2 * s2 / (d2 + s2) if d2 + s2 > 0 else 0.0


def hand_gain(v, k, prior, prior_var=None, variance="worst"):
    d2 = hand_d2(v, k, prior, prior_var, variance)  # held fixed for the look-ahead
    return hand_mse(d2, hand_s2(v, k, variance)) - hand_mse(d2, hand_s2(v, k + 1, variance))


def hand_wants_more(v, k, prior, cfg, prior_var=None):
    return k < cfg.k_max and 4.0 * hand_gain(v, k, prior, prior_var, cfg.variance) > cfg.cost


class FakeGenerate:
    """Rollout t of prompt j has reward ``table[j][t]``; records every call."""

    def __init__(self, table, *, corrupt_round=None, corruption=None):
        self.table = [list(row) for row in table]
        self.drawn = [0] * len(table)
        self.calls = []
        self.corrupt_round, self.corruption = corrupt_round, corruption

    def __call__(self, idx, n):
        idx, n = np.asarray(idx).copy(), np.asarray(n).copy()
        out = []
        for j, m in zip(idx.tolist(), n.tolist()):
            t = self.drawn[j]
            out += self.table[j][t:t + m]
            self.drawn[j] += m
        out = np.array(out, dtype=np.float64)
        if self.corrupt_round == len(self.calls):
            out = self.corruption(out)
        self.calls.append((idx, n, out))
        return out


def bernoulli_table(truth, length=64, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.random(length) < p).astype(float).tolist() for p in truth]
