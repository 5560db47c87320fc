"""GPT-2 block models: equal parameter counts, causality, Looped T = 1 is Single."""
import pytest
import torch

from loopviz.algo import models, tasks
from loopviz.algo.config import AlgoConfig


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny(**changes):
    return AlgoConfig(width=16, heads=2, depth=2, **changes).validate()


def test_every_paradigm_has_the_same_parameter_count():
    counts = {m: models.param_count(models.build(tiny(model=m), tasks.VOCAB, 20))
              for m in ("single", "looped", "shift")}
    assert len(set(counts.values())) == 1
    w, V, L, depth = 16, tasks.VOCAB, 20, 2
    per_layer = 2 * 2 * w + (w * 3 * w + 3 * w) + (w * w + w) + (w * 4 * w + 4 * w) + (4 * w * w + w)
    assert counts["looped"] == V * w + L * w + depth * per_layer + 2 * w + w * V


def test_output_at_position_i_ignores_later_inputs():
    torch.manual_seed(0)
    net = models.build(tiny(), tasks.VOCAB, 20).eval()
    x = torch.randint(0, 8, (3, 12))
    y = x.clone()
    y[:, 7:] = torch.randint(0, 8, (3, 5))
    for loops in (1, 4):
        hx = list(net.loop_states(x, loops))[-1]
        hy = list(net.loop_states(y, loops))[-1]
        assert torch.allclose(hx[:, :7], hy[:, :7], atol=1e-6)
        assert not torch.allclose(hx[:, 7:], hy[:, 7:], atol=1e-3)


def test_looped_with_one_loop_is_single_and_loops_differ():
    torch.manual_seed(0)
    net = models.build(tiny(), tasks.VOCAB, 20).eval()
    x = torch.randint(0, 8, (2, 6))
    single = net.head(net.ln_f(net.stack(net.embed(x))))[:, -2:]
    assert torch.allclose(net(x, 1, 2), single, atol=1e-6)
    assert not torch.allclose(net(x, 3, 2), single, atol=1e-4)


def test_input_injection_is_the_recurrence():
    torch.manual_seed(1)
    net = models.build(tiny(), tasks.VOCAB, 20).eval()
    x = torch.randint(0, 8, (2, 5))
    e = net.embed(x)
    h = net.stack(e)
    h = net.stack(h + e)
    assert torch.allclose(list(net.loop_states(x, 2))[-1], h, atol=1e-6)


def test_no_positions_means_no_position_parameters():
    with_pos = models.param_count(models.build(tiny(), tasks.VOCAB, 20))
    nope = models.param_count(models.build(tiny(positions="none"), tasks.VOCAB, 20))
    assert with_pos - nope == 20 * 16


def test_confidence_rule_picks_the_most_confident_loop():
    torch.manual_seed(2)
    net = models.build(tiny(), tasks.VOCAB, 20).eval()
    x = torch.randint(0, 8, (4, 6))
    with torch.no_grad():
        loops, logits, every = models.choose_loops(net, x, 2, 5)
        scores = [float(torch.log_softmax(net(x, t, 2), -1).max(-1).values.mean()) for t in range(1, 6)]
    assert loops == 1 + max(range(5), key=lambda i: scores[i])
    assert torch.allclose(logits, net(x, loops, 2), atol=1e-6)
    assert len(every) == 5 and all(torch.allclose(every[t - 1], net(x, t, 2), atol=1e-6) for t in range(1, 6))


@pytest.mark.parametrize("heads", [1, 4])
def test_attention_matches_torch_multihead_attention(heads):
    """Our written-out attention equals nn.MultiheadAttention with the same weights."""
    torch.manual_seed(3)
    width = 16
    ours = models.CausalSelfAttention(width, heads).eval()
    ref = torch.nn.MultiheadAttention(width, heads, batch_first=True).eval()
    with torch.no_grad():
        ref.in_proj_weight.copy_(ours.qkv.weight)
        ref.in_proj_bias.copy_(ours.qkv.bias)
        ref.out_proj.weight.copy_(ours.proj.weight)
        ref.out_proj.bias.copy_(ours.proj.bias)
    x = torch.randn(2, 7, width)
    mask = torch.ones(7, 7, dtype=torch.bool).triu(1)
    expected = ref(x, x, x, attn_mask=mask, need_weights=False)[0]
    assert torch.allclose(ours(x), expected, atol=1e-5)
