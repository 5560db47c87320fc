"""Independent numpy re-implementations used as references by the tests.

Written straight from the paper's equations (Sec. 3, App. D), one sample at a time,
without any of loopviz's shortcuts (distinct rows, last-column-only updates).
"""
import numpy as np


def looped_logits(W_K, W_Q, W_V, W_h, E0, loops):
    """z_t = z_{t-1} + W_V E E^T W_K^T W_Q z_{t-1};  E_t = E_{t-1} + W_V E E^T W_K^T W_Q E."""
    E = E0.copy()
    z = E0[:, -1].copy()
    for _ in range(loops):
        A = W_V @ E @ E.T @ W_K.T @ W_Q
        z, E = z + A @ z, E + A @ E
    return W_h @ z


def unflatten(theta, d, V=3):
    dd = d * d
    return (theta[:dd].reshape(d, d), theta[dd:2 * dd].reshape(d, d),
            theta[2 * dd:3 * dd].reshape(d, d), theta[3 * dd:].reshape(V, d))


def mean_cross_entropy(theta, d, token, position, inputs, targets, loops):
    """The empirical loss of the paper, sample by sample over every copy."""
    W = unflatten(theta, d)
    total = 0.0
    for x, y in zip(inputs, targets):
        E0 = (token[x] + position[:len(x)]).T
        out = looped_logits(*W, E0, loops)
        out = out - out.max()
        total += -(out[y] - np.log(np.exp(out).sum()))
    return total / len(inputs)
