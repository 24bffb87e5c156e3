"""A judge that ignores quality: a seeded 50/50 draw per pair."""

from __future__ import annotations

from pytest_eng5.reference.judge.protocol import MOCK_PROVIDER, Judgement, JudgeRequest
from pytest_eng5.reference.judge.seeded import estimate_tokens, mock_prompt_tokens, pair_rng

COIN_FLIP_MODEL = "eng5-coin-flip-v1"


class CoinFlipJudge:
    """Deterministic 50/50 judge: the winner comes from a hash of seed and texts only."""

    name = "coin_flip"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    async def judge(self, request: JudgeRequest) -> Judgement:
        """Flip a seeded coin for this pair."""
        a_wins = pair_rng(self.seed, request, self.name).random() < 0.5
        justification = f"{'Essay A' if a_wins else 'Essay B'} chosen by a seeded coin flip."
        return Judgement(
            winner="Essay A" if a_wins else "Essay B",
            confidence=1.0,
            justification=justification,
            error=None,
            provider=MOCK_PROVIDER,
            model=COIN_FLIP_MODEL,
            prompt_tokens=mock_prompt_tokens(request),
            completion_tokens=20 + estimate_tokens(justification),
            cost_usd=0.0,
            response_time_ms=0,
        )
