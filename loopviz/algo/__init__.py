"""App. E.2 of the paper: GPT-2-block Single-Attn, Looped-Attn and SHIFT on algorithmic tasks."""
