import numpy as np
import pytest
import torch

from loopviz.toy import markov, models
from loopviz.config import RunConfig
from loopviz.toy.training import prepare
from tests import reference


def random_case(d=5, seed=0, scale=0.4):
    rng = np.random.default_rng(seed)
    token, position = models.make_embedding("random", d, 3, seed)
    theta = rng.standard_normal(models.param_count(d)) * scale
    contexts = markov.enumerate_sequences(3)
    return d, token, position, theta, contexts


@pytest.mark.parametrize("loops", [1, 2, 3, 5])
def test_logits_match_the_papers_recursion(loops):
    d, token, position, theta, contexts = random_case()
    E0 = models.embed(torch.as_tensor(contexts), torch.as_tensor(token), torch.as_tensor(position))
    got = models.logits(torch.as_tensor(theta), E0, loops).numpy()
    W = reference.unflatten(theta, d)
    for c, x in enumerate(contexts):
        expected = reference.looped_logits(*W, (token[x] + position[:3]).T, loops)
        np.testing.assert_allclose(got[c], expected, rtol=1e-10, atol=1e-12)


def test_looped_with_one_loop_is_single_attn():
    d, token, position, theta, contexts = random_case(seed=1)
    W_K, W_Q, W_V, W_h = reference.unflatten(theta, d)
    E0 = models.embed(torch.as_tensor(contexts), torch.as_tensor(token), torch.as_tensor(position))
    got = models.logits(torch.as_tensor(theta), E0, 1).numpy()
    for c, x in enumerate(contexts):
        E = (token[x] + position[:3]).T
        z0 = E[:, -1]
        z1 = z0 + W_V @ E @ E.T @ W_K.T @ W_Q @ z0   # Single-Attn, Sec. 3
        np.testing.assert_allclose(got[c], W_h @ z1, rtol=1e-10)


def test_single_and_looped_configs_share_initial_weights():
    single = prepare(RunConfig(model="single", d=4))
    looped = prepare(RunConfig(model="looped", d=4))
    np.testing.assert_array_equal(single.E0, looped.E0)
    np.testing.assert_array_equal(models.init_weights(4, 0.02, 0), models.init_weights(4, 0.02, 0))


def test_embedding_of_training_positions_is_the_same_at_every_length():
    token3, position3 = models.make_embedding("random", 8, 3, 11)
    token17, position17 = models.make_embedding("random", 8, 17, 11)
    np.testing.assert_array_equal(token3, token17)
    np.testing.assert_array_equal(position3, position17[:3])


def test_onehot_embedding_is_one_hot_plus_one_hot():
    token, position = models.make_embedding("onehot", 6, 3, 0)
    E0 = models.embed(torch.tensor([[2, 0, 1]]), torch.as_tensor(token), torch.as_tensor(position))[0].numpy()
    expected = np.zeros((6, 3))
    expected[[2, 0, 1], [0, 1, 2]] = 1
    expected[[3, 4, 5], [0, 1, 2]] = 1
    np.testing.assert_array_equal(E0, expected)
    with pytest.raises(ValueError):
        models.make_embedding("onehot", 5, 3, 0)


def test_distinct_row_loss_equals_the_per_sample_mean():
    config = RunConfig(d=4)
    problem = prepare(config)
    theta = np.random.default_rng(4).standard_normal(models.param_count(4)) * 0.5
    task = problem.task
    for loops in (1, 3):
        fast = problem.loss(torch.as_tensor(theta), loops).item()
        slow = reference.mean_cross_entropy(theta, 4, problem.token, problem.position,
                                            task.train[:, :3], task.train[:, 3], loops)
        assert fast == pytest.approx(slow, rel=1e-12)
