"""A green-list watermark for language models the provider runs itself (Kirchenbauer et al., 2023).

At each generation step the previous token and the secret choose a *green list*: a keyed
pseudo-random fraction ``gamma`` of the vocabulary. Adding ``delta`` to the green tokens' logits
makes the model prefer them a little; text written without the key has about ``gamma`` of its
tokens green. The detector re-derives the lists from the token ids, counts green tokens and reports a
z-score and the exact binomial p-value (one-sided). Each distinct (previous, token) pair is scored
once, so repeated phrases do not inflate the evidence.

The core here is numpy only (token ids in, z and p out), so it is tested without any model. The
Hugging Face adapter, :func:`make_logits_processor`, imports ``torch`` and ``transformers`` only when
called: they are not dependencies of synthguard. This mark carries no ``ProduceID``; it says "this
text came from our model, with this key", and the text carrier (``watermark.text``) carries the ID.

Green-list membership is a keyed hash (SplitMix64 finaliser on a per-context HMAC seed and the token
id), computed for the whole vocabulary in one vectorised pass; it does not depend on numpy's random
generators, whose streams may change between releases.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import importlib
import math
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from synthguard.errors import UsageError
from synthguard.watermark.base import derive_key

__all__ = ["SCHEME", "GreenList", "GreenListScore", "make_logits_processor"]

SCHEME: Final = "synthguard-greenlist-v1"

_MASK64: Final = (1 << 64) - 1


def _mix(values: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """SplitMix64's finaliser: a bijection of 64-bit words with good avalanche."""
    with np.errstate(over="ignore"):
        z = values.copy()
        z ^= z >> np.uint64(30)
        z *= np.uint64(0xBF58476D1CE4E5B9)
        z ^= z >> np.uint64(27)
        z *= np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return z


@dataclasses.dataclass(frozen=True, slots=True)
class GreenListScore:
    """The evidence in one token sequence."""

    #: Distinct (previous, token) pairs scored.
    scored: int
    green: int
    z_score: float
    #: One-sided exact binomial tail P(X >= green), X ~ Binomial(scored, gamma); 1.0 if nothing scored.
    p_value: float

    def is_watermarked(self, threshold: float = 1e-6) -> bool:
        return self.p_value < threshold


def _binomial_tail(successes: int, trials: int, probability: float) -> float:
    """P(X >= successes) for X ~ Binomial(trials, probability), summed in log space."""
    if successes <= 0:
        return 1.0
    if successes > trials:
        return 0.0
    log_p, log_q = math.log(probability), math.log1p(-probability)
    terms = [
        math.lgamma(trials + 1)
        - math.lgamma(k + 1)
        - math.lgamma(trials - k + 1)
        + k * log_p
        + (trials - k) * log_q
        for k in range(successes, trials + 1)
    ]
    top = max(terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in terms))


class GreenList:
    """Keyed green lists over a vocabulary of ``vocab_size`` token ids.

    ``gamma`` is the green fraction (0.25 by default, as in the paper), ``delta`` the logit bias.
    """

    def __init__(self, secret: bytes, vocab_size: int, *, gamma: float = 0.25, delta: float = 2.0) -> None:
        if not isinstance(secret, bytes) or len(secret) < 16:
            raise UsageError("the watermark secret must be at least 16 bytes")
        if vocab_size < 2:
            raise UsageError(f"vocab_size must be at least 2, got {vocab_size}")
        if not 0.0 < gamma < 1.0:
            raise UsageError(f"gamma must be in (0, 1), got {gamma}")
        if delta < 0.0:
            raise UsageError(f"delta must not be negative, got {delta}")
        self.vocab_size = vocab_size
        self.gamma = gamma
        self.delta = delta
        self._key = derive_key(secret, "greenlist-v1")
        self._limit = np.uint64(min(_MASK64, int(gamma * 2.0**64)))
        tokens = np.arange(vocab_size, dtype=np.uint64)
        with np.errstate(over="ignore"):
            self._token_words = tokens * np.uint64(0x9E3779B97F4A7C15)

    def _seed(self, previous: int) -> np.uint64:
        digest = hmac.new(self._key, int(previous).to_bytes(8, "big", signed=True), hashlib.sha256).digest()
        return np.uint64(int.from_bytes(digest[:8], "big"))

    def mask(self, previous: int) -> npt.NDArray[np.bool_]:
        """The green list after token ``previous``, as a boolean mask over the vocabulary."""
        return _mix(self._token_words ^ self._seed(previous)) < self._limit

    def is_green(self, previous: int, token: int) -> bool:
        word = np.array([token], dtype=np.uint64)
        with np.errstate(over="ignore"):
            word *= np.uint64(0x9E3779B97F4A7C15)
        return bool(_mix(word ^ self._seed(previous))[0] < self._limit)

    def bias(
        self, logits: npt.NDArray[np.floating[Any]], previous: Sequence[int]
    ) -> npt.NDArray[np.floating[Any]]:
        """``logits`` (batch x vocab) with ``delta`` added to each row's green list (a new array)."""
        out = np.array(logits, copy=True)
        if out.ndim != 2 or out.shape[0] != len(previous) or out.shape[1] < self.vocab_size:
            raise UsageError("logits must be shaped (batch, vocab) with one previous token per row")
        for row, token in enumerate(previous):
            out[row, : self.vocab_size][self.mask(int(token))] += self.delta
        return out

    def score(self, token_ids: Sequence[int], *, prompt_tokens: int = 0) -> GreenListScore:
        """Score ``token_ids`` (prompt first, then generated); the first ``prompt_tokens`` are context
        only. Each distinct (previous, token) pair counts once."""
        ids = [int(t) for t in token_ids]
        pairs = {(ids[i - 1], ids[i]) for i in range(max(1, prompt_tokens), len(ids))}
        scored = len(pairs)
        if scored == 0:
            return GreenListScore(0, 0, 0.0, 1.0)
        green = sum(self.is_green(prev, tok) for prev, tok in pairs)
        expected = self.gamma * scored
        z = (green - expected) / math.sqrt(scored * self.gamma * (1 - self.gamma))
        return GreenListScore(scored, green, z, _binomial_tail(green, scored, self.gamma))


def make_logits_processor(green_list: GreenList) -> Any:
    """A ``transformers.LogitsProcessor`` that biases generation towards ``green_list``.

    Imports ``torch`` and ``transformers`` here (not dependencies of synthguard: install them with the
    model). Pass it in ``model.generate(..., logits_processor=LogitsProcessorList([processor]))``.
    """
    try:
        torch = importlib.import_module("torch")
        base: Any = importlib.import_module("transformers").LogitsProcessor
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise UsageError("the logits watermark needs torch and transformers installed") from exc

    class GreenListLogitsProcessor(base):  # type: ignore[misc]
        def __call__(self, input_ids: Any, scores: Any) -> Any:
            for row in range(input_ids.shape[0]):
                mask = green_list.mask(int(input_ids[row, -1]))
                width = min(scores.shape[1], green_list.vocab_size)
                green = torch.from_numpy(mask[:width]).to(scores.device)
                scores[row, :width] = scores[row, :width] + green.to(scores.dtype) * green_list.delta
            return scores

    return GreenListLogitsProcessor()
