"""The paper's toy experiment (Sec. 3, App. D, E.1): the Markov language task, the linear-attention
Single-/Looped-Attn models, their training loop and length generalisation."""
