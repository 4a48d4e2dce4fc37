"""A linear-chain CRF over word-level tag scores (Lafferty et al. 2001; Lample et al. 2016).

The encoder gives each word a score per tag; the CRF adds a learned score for each pair of
consecutive tags and trains on the log-likelihood of the whole tag sequence. Transitions
the scheme forbids (``O`` then ``I-ORG`` in BIO) are fixed at a large negative score, so
Viterbi decoding only returns valid sequences.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

FORBIDDEN = -1e4  # exp(-1e4) is 0 in float32, and the sum stays finite


class CRF(nn.Module):
    """Transition, start and end scores over ``num_tags`` tags, with forbidden moves masked."""

    def __init__(self, num_tags: int, allowed: Sequence[tuple[int, int]] | None = None,
                 starts: Sequence[int] | None = None, ends: Sequence[int] | None = None) -> None:
        super().__init__()
        self.num_tags = num_tags
        self.transitions = nn.Parameter(torch.zeros(num_tags, num_tags))
        self.start = nn.Parameter(torch.zeros(num_tags))
        self.end = nn.Parameter(torch.zeros(num_tags))
        # Buffers, not parameters: the constraints are part of the scheme and never learned.
        self.register_buffer("transition_mask", _mask((num_tags, num_tags), allowed))
        self.register_buffer("start_mask", _mask((num_tags,), None if starts is None else [(i,) for i in starts]))
        self.register_buffer("end_mask", _mask((num_tags,), None if ends is None else [(i,) for i in ends]))

    def _scores(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return (self.transitions + self.transition_mask, self.start + self.start_mask, self.end + self.end_mask)

    def neg_log_likelihood(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Summed over the batch: ``-log p(tags | emissions)``. ``emissions`` (B, W, K); ``tags``
        and ``mask`` (B, W) with each row's words first (mask 1) and padding after."""
        emissions = emissions.float()
        mask = mask.bool()
        trans, start, end = self._scores()
        tags = tags.masked_fill(~mask, 0)
        batch = torch.arange(emissions.shape[0], device=emissions.device)
        # Score of the given path.
        score = start[tags[:, 0]] + emissions[batch, 0, tags[:, 0]]
        for t in range(1, emissions.shape[1]):
            step = trans[tags[:, t - 1], tags[:, t]] + emissions[batch, t, tags[:, t]]
            score = score + step * mask[:, t]
        last = tags[batch, mask.sum(1) - 1]
        score = score + end[last]
        # Log of the sum over all paths (forward algorithm).
        alpha = start + emissions[:, 0]
        for t in range(1, emissions.shape[1]):
            nxt = torch.logsumexp(alpha[:, :, None] + trans[None] + emissions[:, t, None, :], dim=1)
            alpha = torch.where(mask[:, t, None], nxt, alpha)
        log_z = torch.logsumexp(alpha + end, dim=1)
        return (log_z - score).sum()

    @torch.no_grad()
    def marginals(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``p(tag at word t | emissions)`` for every word, (B, W, K), by forward-backward;
        padding rows are zero."""
        emissions = emissions.float()
        mask = mask.bool()
        trans, start, end = self._scores()
        width = emissions.shape[1]
        alphas = [start + emissions[:, 0]]
        for t in range(1, width):
            nxt = torch.logsumexp(alphas[-1][:, :, None] + trans[None] + emissions[:, t, None, :], dim=1)
            alphas.append(torch.where(mask[:, t, None], nxt, alphas[-1]))
        # Backward: beta at each row's last word is the end score; padding carries it back unchanged.
        betas = [end.expand_as(alphas[0])] * width
        for t in range(width - 2, -1, -1):
            nxt = torch.logsumexp(trans[None] + emissions[:, t + 1, None, :] + betas[t + 1][:, None, :], dim=2)
            betas[t] = torch.where(mask[:, t + 1, None], nxt, betas[t + 1])
        alpha, beta = torch.stack(alphas, 1), torch.stack(betas, 1)
        log_z = torch.logsumexp(alphas[-1] + end, dim=1)
        return (alpha + beta - log_z[:, None, None]).exp() * mask[:, :, None]

    @torch.no_grad()
    def decode(self, emissions: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
        """The best tag sequence of each row (Viterbi), as many tags as the row has words."""
        emissions = emissions.float()
        mask = mask.bool()
        trans, start, end = self._scores()
        score = start + emissions[:, 0]
        history = []
        for t in range(1, emissions.shape[1]):
            best, idx = (score[:, :, None] + trans[None]).max(dim=1)
            history.append(idx)
            score = torch.where(mask[:, t, None], best + emissions[:, t], score)
        score = score + end
        paths = []
        for b, length in enumerate(mask.sum(1).tolist()):
            tag = int(score[b].argmax())
            path = [tag]
            for idx in reversed(history[:length - 1]):
                tag = int(idx[b, tag])
                path.append(tag)
            paths.append(path[::-1])
        return paths


def _mask(shape: tuple[int, ...], allowed: Sequence[tuple[int, ...]] | None) -> torch.Tensor:
    if allowed is None:
        return torch.zeros(shape)
    out = torch.full(shape, FORBIDDEN)
    for index in allowed:
        out[index] = 0.0
    return out
