"""GPT-2 layers and the two paradigms of App. E.2 over one parameter set.

Layer (GPT-2, pre-LayerNorm): h + Attn(LN(h)), then h + MLP(LN(h)), MLP = Linear(w, 4w),
GELU, Linear(4w, w); causal multi-head softmax attention. Tokens and learned positions
are embedded once; a final LayerNorm and a linear head read the logits.

Single-Attn runs the stack of `depth` layers once. Looped-Attn ("FOP-Loop-Adaptive",
Fan et al. 2024) runs the same stack T times with input injection,
h_t = stack(h_{t-1} + e), h_0 = 0, so T = 1 is exactly Single-Attn: both paradigms (and
SHIFT, which switches T = 1 -> T = n) have one and the same parameter count.

Attention is written out (softmax(QKᵀ/√d + mask) V) rather than calling
F.scaled_dot_product_attention: its CPU kernel has no double backward, which the
Hessian-vector products of curvature.py need.
"""
from __future__ import annotations

import math

import torch
from torch import nn


class CausalSelfAttention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, L, W = x.shape
        q, k, v = self.qkv(x).split(W, dim=2)
        q, k, v = (t.view(B, L, self.heads, W // self.heads).transpose(1, 2) for t in (q, k, v))
        scores = q @ k.transpose(-2, -1) / math.sqrt(W // self.heads)
        causal = torch.ones(L, L, dtype=torch.bool, device=x.device).tril()
        scores = scores.masked_fill(~causal, float("-inf"))
        out = torch.softmax(scores, dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(B, L, W))


class Layer(nn.Module):
    """One GPT-2 layer: pre-LN attention and pre-LN GELU MLP, each with a residual."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.ln1 = nn.LayerNorm(width)
        self.attn = CausalSelfAttention(width, heads)
        self.ln2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = h + self.attn(self.ln1(h))
        return h + self.mlp(self.ln2(h))


class LoopNet(nn.Module):
    """Embedding, a stack of GPT-2 layers (applied `loops` times), final LN and head."""

    def __init__(self, vocab: int, width: int, heads: int, depth: int, max_len: int,
                 positions: str = "learned", input_injection: bool = True):
        super().__init__()
        self.token = nn.Embedding(vocab, width)
        self.position = nn.Embedding(max_len, width) if positions == "learned" else None
        self.layers = nn.ModuleList(Layer(width, heads) for _ in range(depth))
        self.ln_f = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab, bias=False)
        self.input_injection = input_injection
        self.apply(_gpt2_init)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        e = self.token(x)
        if self.position is not None:
            e = e + self.position(torch.arange(x.shape[1], device=x.device))
        return e

    def stack(self, h: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            h = layer(h)
        return h

    def loop_states(self, x: torch.Tensor, loops: int):
        """Yield h_1 .. h_loops (h_t = stack(h_{t-1} + e) with input injection, h_0 = 0;
        without it h_1 = stack(e), h_t = stack(h_{t-1}))."""
        e = self.embed(x)
        h = torch.zeros_like(e)
        for t in range(loops):
            h = self.stack(h + e if (self.input_injection or t == 0) else h)
            yield h

    def logits(self, h: torch.Tensor, output_len: int) -> torch.Tensor:
        """Logits at the last output_len positions (the SLOTs): [B, output_len, V]."""
        return self.head(self.ln_f(h[:, -output_len:]))

    def forward(self, x: torch.Tensor, loops: int, output_len: int) -> torch.Tensor:
        """Logits after exactly `loops` iterations (the loss sees only this last loop)."""
        for h in self.loop_states(x, loops):
            pass
        return self.logits(h, output_len)


def _gpt2_init(module: nn.Module) -> None:
    """GPT-2's initialisation: N(0, 0.02) weights, zero biases, unit LayerNorm."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)


def build(config, vocab: int, max_len: int) -> LoopNet:
    """The network of a config; every paradigm (single, looped, shift) gets this same one."""
    return LoopNet(vocab, config.width, config.heads, config.depth, max_len, config.positions, config.input_injection)


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def confidence(logits: torch.Tensor) -> float:
    """Mean over the batch and the output positions of the predicted token's log-probability."""
    return float(torch.log_softmax(logits, -1).max(-1).values.mean())


def choose_loops(model: LoopNet, x: torch.Tensor, output_len: int, max_loops: int
                 ) -> tuple[int, torch.Tensor, list[torch.Tensor]]:
    """The adaptive stopping rule at inference (our reading of Fan et al.'s maximum
    confidence): run loops 1..max_loops, score each by `confidence`, stop at the most
    confident loop (the first one on ties). Returns (loops chosen, its logits, the logits
    of every loop, so that other rules can be scored from the same pass)."""
    every = [model.logits(h, output_len) for h in model.loop_states(x, max_loops)]
    scores = [confidence(logits) for logits in every]
    best = max(range(len(every)), key=lambda i: (scores[i], -i))
    return best + 1, every[best], every
