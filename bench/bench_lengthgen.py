"""Times length generalisation (App. E.1.3): sampling 5000 sequences of length 17, and
evaluating the bundled Single and Looped runs on L = 8, 11, 14, 17 (sampling included).

Run: python bench/bench_lengthgen.py. Prints wall-clock times and their ratio to
baselines measured in the same process, so numbers compare across machines:
  sampling   against brute-force sampling at L = 8 (enumerate 3^8 sequences, weight
             each by P(X)^2, draw 5000 with numpy's choice);
  evaluation against a per-sample numpy forward pass (one model, 5000 contexts of
             length 16), the way a plain loop over sequences would do it.
Asserts nothing; the issue's targets (0.5 s, 2 s) are printed beside the times.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loopviz.toy import lengthgen, markov, models  # noqa: E402
from loopviz.runs.format import read_run  # noqa: E402

from timing import best_of  # noqa: E402  (bench/ is on sys.path when run as a script)

RUNS = Path(__file__).resolve().parents[1] / "assets" / "default"
N, LONG = 5000, 17


def brute_force_sample(transitions: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    every = markov.enumerate_sequences(length)
    weights = np.exp(2.0 * markov.log_prob(every, transitions))
    return every[rng.choice(len(every), size=N, p=weights / weights.sum())]


def per_sample_forward(theta: np.ndarray, d: int, token: np.ndarray, position: np.ndarray,
                       contexts: np.ndarray, loops: int) -> np.ndarray:
    """Looped-Attn one sequence at a time in numpy, straight from Sec. 3's equations."""
    dd = d * d
    W_K, W_Q, W_V = (theta[i * dd:(i + 1) * dd].reshape(d, d) for i in range(3))
    W_h = theta[3 * dd:].reshape(markov.VOCAB, d)
    out = np.empty(len(contexts), dtype=np.int64)
    for i, x in enumerate(contexts):
        E = (token[x] + position[:len(x)]).T
        z = E[:, -1]
        for _ in range(loops):
            A = W_V @ E @ E.T @ W_K.T @ W_Q
            z, E = z + A @ z, E + A @ E
        out[i] = np.argmax(W_h @ z)
    return out


def main() -> None:
    runs = [read_run(RUNS / "single"), read_run(RUNS / "looped")]
    looped = runs[1]
    T = looped.task["transitions"]
    rng = np.random.default_rng(0)

    sample = best_of(lambda: markov.sample_sequences(T, LONG, N, 2.0, rng))
    brute = best_of(lambda: brute_force_sample(T, 8, rng))
    print(f"sample {N} x L={LONG}:            {sample * 1e3:8.1f} ms  (target <= 500 ms)")
    print(f"  baseline brute force L=8:     {brute * 1e3:8.1f} ms  ratio {sample / brute:6.2f}x")

    lengthgen.accuracy_table(runs, lengthgen.PAPER_LENGTHS, N)  # warm torch up once
    evaluate = best_of(lambda: lengthgen.accuracy_table(runs, lengthgen.PAPER_LENGTHS, N), repeats=3)
    c = looped.config
    contexts = markov.sample_sequences(T, LONG, N, 2.0, rng)[0][:, :-1]
    token, position = models.make_embedding(c.embedding, c.d, LONG - 1, c.data_seed)
    forward = best_of(lambda: per_sample_forward(looped.thetas[-1], c.d, token, position, contexts, c.loops),
                      repeats=1)
    print(f"evaluate 2 models x L={','.join(map(str, lengthgen.PAPER_LENGTHS))} (n={N}, incl. sampling and "
          f"the L=4 training rows): {evaluate * 1e3:8.1f} ms  (target <= 2000 ms)")
    print(f"  baseline per-sample numpy forward, 1 model, L={LONG}: {forward * 1e3:8.1f} ms  "
          f"ratio {evaluate / forward:6.3f}x")


if __name__ == "__main__":
    main()
