"""The green-list watermark for language models: a tiny random numpy "model" generates with and without
the bias; the detector's z-score and exact p-value separate the two. The transformers adapter is
tested only where torch and transformers are installed (they are not synthguard dependencies)."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from synthguard.errors import UsageError
from synthguard.watermark.logits import GreenList, _binomial_tail, make_logits_processor

SECRET = b"logits-test-secret-0123456789"
VOCAB = 1000


@functools.cache
def model() -> np.ndarray:
    """The tiny randomly initialised "model": a bigram logits table."""
    return np.random.default_rng(1234).normal(scale=2.0, size=(VOCAB, VOCAB))


def generate(green: GreenList | None, steps: int, seed: int) -> list[int]:
    """Sample ``steps`` tokens from the random bigram model, optionally biased towards the green lists."""
    table = model()
    rng = np.random.default_rng(seed)
    tokens = [int(rng.integers(VOCAB))]
    for _ in range(steps):
        logits = table[tokens[-1]][None, :]
        if green is not None:
            logits = green.bias(logits, [tokens[-1]])
        probabilities = np.exp(logits[0] - logits[0].max())
        probabilities /= probabilities.sum()
        tokens.append(int(rng.choice(VOCAB, p=probabilities)))
    return tokens


def test_generated_text_is_detected() -> None:
    green = GreenList(SECRET, VOCAB)
    score = green.score(generate(green, 200, seed=1), prompt_tokens=1)
    assert score.scored > 150
    assert score.z_score > 6
    assert score.p_value < 1e-9
    assert score.is_watermarked()


@pytest.mark.parametrize("seed", range(5))
def test_unbiased_text_and_wrong_key_are_not_detected(seed: int) -> None:
    green = GreenList(SECRET, VOCAB)
    plain = green.score(generate(None, 200, seed=seed))
    assert plain.p_value > 1e-3
    assert not plain.is_watermarked()
    other = GreenList(b"another-secret-0123456789", VOCAB)
    assert not other.score(generate(green, 200, seed=seed)).is_watermarked()


def test_green_fraction_is_gamma_and_lists_differ_by_context() -> None:
    green = GreenList(SECRET, 50_000, gamma=0.25)
    masks = [green.mask(previous) for previous in range(20)]
    fractions = [float(m.mean()) for m in masks]
    assert all(abs(f - 0.25) < 0.01 for f in fractions)
    assert not np.array_equal(masks[0], masks[1])
    assert green.is_green(7, int(np.flatnonzero(masks[7])[0]))
    assert not green.is_green(7, int(np.flatnonzero(~masks[7])[0]))


def test_green_lists_are_stable() -> None:
    """Lists must never change between releases, or old text stops being detected."""
    green = GreenList(b"greenlist-regression-key-01", 64)
    assert "".join("1" if g else "0" for g in green.mask(42)) == GREEN_42


GREEN_42 = "1110000000100100000110000010000010000011100000101010000100000000"


def test_repeated_pairs_count_once() -> None:
    green = GreenList(SECRET, VOCAB)
    tokens = [5, 6] * 100
    assert green.score(tokens).scored == 2


def test_bias_adds_delta_to_green_only() -> None:
    green = GreenList(SECRET, VOCAB, delta=3.0)
    logits = np.zeros((2, VOCAB))
    biased = green.bias(logits, [3, 4])
    assert np.array_equal(biased[0] == 3.0, green.mask(3))
    assert np.array_equal(biased[1] == 3.0, green.mask(4))
    assert np.all(logits == 0.0)


def test_binomial_tail_matches_direct_sum() -> None:
    for successes, trials, p in [(0, 10, 0.25), (3, 10, 0.25), (10, 10, 0.5), (40, 100, 0.25)]:
        direct = sum(
            math.comb(trials, k) * p**k * (1 - p) ** (trials - k) for k in range(successes, trials + 1)
        )
        assert math.isclose(_binomial_tail(successes, trials, p), direct, rel_tol=1e-9)


def test_empty_sequence_scores_nothing() -> None:
    score = GreenList(SECRET, VOCAB).score([1])
    assert (score.scored, score.p_value) == (0, 1.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"secret": b"short"}, "secret"),
        ({"vocab_size": 1}, "vocab_size"),
        ({"gamma": 1.0}, "gamma"),
        ({"delta": -1.0}, "delta"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"secret": SECRET, "vocab_size": VOCAB, **kwargs}
    with pytest.raises(UsageError, match=message):
        GreenList(**arguments)  # type: ignore[arg-type]


def test_bias_checks_shape() -> None:
    with pytest.raises(UsageError, match="shaped"):
        GreenList(SECRET, VOCAB).bias(np.zeros((1, VOCAB)), [1, 2])


def test_transformers_adapter() -> None:
    """Runs only where torch and transformers are installed (not synthguard dependencies)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    green = GreenList(SECRET, VOCAB)
    processor = make_logits_processor(green)
    scores = processor(torch.tensor([[1, 2, 3]]), torch.zeros((1, VOCAB)))
    assert np.array_equal(scores[0].numpy() == green.delta, green.mask(3))
