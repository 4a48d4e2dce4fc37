"""The CRF against brute force over every tag path of short sentences."""

from __future__ import annotations

import itertools

import torch

from fintune.tagging.crf import CRF
from fintune.tagging.schemes import allowed_ends, allowed_starts, allowed_transitions, tag_set


def path_score(crf: CRF, emissions: torch.Tensor, path: tuple[int, ...]) -> torch.Tensor:
    trans, start, end = crf._scores()
    score = start[path[0]] + emissions[0, path[0]] + end[path[-1]]
    for a, b, t in zip(path, path[1:], range(1, len(path))):
        score = score + trans[a, b] + emissions[t, b]
    return score


def random_crf(num_tags: int, **kwargs) -> CRF:
    torch.manual_seed(0)
    crf = CRF(num_tags, **kwargs)
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_()
    return crf


def test_likelihood_and_viterbi_match_brute_force() -> None:
    crf = random_crf(3)
    lengths = [4, 2, 3]
    emissions = torch.randn(3, 4, 3)
    mask = torch.tensor([[1] * n + [0] * (4 - n) for n in lengths])
    tags = torch.randint(0, 3, (3, 4))
    nll = crf.neg_log_likelihood(emissions, tags, mask)
    expected = 0.0
    decoded = crf.decode(emissions, mask)
    for b, n in enumerate(lengths):
        paths = list(itertools.product(range(3), repeat=n))
        scores = torch.stack([path_score(crf, emissions[b], p) for p in paths])
        expected += torch.logsumexp(scores, 0) - path_score(crf, emissions[b], tuple(tags[b, :n].tolist()))
        assert tuple(decoded[b]) == paths[int(scores.argmax())]
    assert torch.isclose(nll, torch.as_tensor(expected), atol=1e-4)


def test_forbidden_transitions_are_never_decoded() -> None:
    tags = tag_set(["ORG", "PER"], "bioes")
    crf = random_crf(len(tags), allowed=allowed_transitions(tags, "bioes"),
                     starts=allowed_starts(tags, "bioes"), ends=allowed_ends(tags, "bioes"))
    allowed = set(allowed_transitions(tags, "bioes"))
    torch.manual_seed(1)
    emissions = torch.randn(50, 7, len(tags)) * 3
    for path in crf.decode(emissions, torch.ones(50, 7, dtype=torch.bool)):
        assert all((a, b) in allowed for a, b in zip(path, path[1:]))
        assert tags[path[0]][0] in "BSO" and tags[path[-1]][0] in "ESO"


def test_gradient_reaches_transitions() -> None:
    crf = CRF(3)
    loss = crf.neg_log_likelihood(torch.randn(2, 3, 3), torch.zeros(2, 3, dtype=torch.long), torch.ones(2, 3))
    loss.backward()
    assert crf.transitions.grad is not None and crf.transitions.grad.abs().sum() > 0


def test_marginals_match_brute_force() -> None:
    crf = random_crf(3)
    lengths = [4, 2, 1]
    emissions = torch.randn(3, 4, 3)
    mask = torch.tensor([[1] * n + [0] * (4 - n) for n in lengths])
    marginals = crf.marginals(emissions, mask)
    for b, n in enumerate(lengths):
        paths = list(itertools.product(range(3), repeat=n))
        weights = torch.stack([path_score(crf, emissions[b], p) for p in paths]).softmax(0)
        expected = torch.zeros(n, 3)
        for w, p in zip(weights, paths):
            for t, tag in enumerate(p):
                expected[t, tag] += w
        assert torch.allclose(marginals[b, :n], expected, atol=1e-5)
        assert torch.all(marginals[b, n:] == 0)
