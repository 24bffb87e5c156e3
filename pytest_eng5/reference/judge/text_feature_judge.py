"""The default judge: a transparent text-feature score plus seeded noise.

P(A wins) = logistic((score_a - score_b) / noise + position_bias), drawn from an RNG seeded by
sha256(seed, essay A, essay B): clear pairs rarely flip, close pairs can go either way, and the
same inputs always give the same judgement. The request's model, temperature and prompts set
the noise, the position bias and the feature weights (:mod:`.knobs`).
"""

from __future__ import annotations

from pytest_eng5.errors import ConfigurationError
from pytest_eng5.reference.judge.features import feature_points, text_features
from pytest_eng5.reference.judge.knobs import DEFAULT_MOCK_MODEL, JudgeKnobs, knobs_for
from pytest_eng5.reference.judge.protocol import (
    MAX_JUSTIFICATION_CHARS,
    MOCK_PROVIDER,
    Judgement,
    JudgeRequest,
)
from pytest_eng5.reference.judge.seeded import (
    estimate_tokens,
    logistic,
    mock_prompt_tokens,
    pair_rng,
)

TEXT_FEATURES_MODEL = DEFAULT_MOCK_MODEL
DEFAULT_NOISE = 0.6


class TextFeaturesJudge:
    """Deterministic text-feature judge with seeded noise (provider ``mock``)."""

    name = "text_features"

    def __init__(self, seed: int = 0, noise: float = DEFAULT_NOISE) -> None:
        if noise < 0:
            raise ConfigurationError(
                f"TextFeaturesJudge noise must be >= 0, got {noise}",
                next_step="use 0 for a noise-free judge or a positive score scale such as 0.6",
            )
        self.seed = seed
        self.noise = noise

    def probability_a_wins(
        self, essay_a_text: str, essay_b_text: str, knobs: JudgeKnobs | None = None
    ) -> float:
        """P(A wins) = logistic(margin / noise + position_bias), with the margin of the
        weighted scores; a step function when the noise is 0."""
        knobs = knobs or JudgeKnobs(noise=self.noise)
        margin = weighted_score(essay_a_text, knobs) - weighted_score(essay_b_text, knobs)
        if knobs.noise == 0:
            return 1.0 if margin > 0 else 0.0 if margin < 0 else 0.5
        return logistic(margin / knobs.noise + knobs.position_bias)

    async def judge(self, request: JudgeRequest) -> Judgement:
        """Judge one pair; the same request and seed always give the same judgement."""
        knobs = knobs_for(request, self.noise)
        p_a = self.probability_a_wins(request.essay_a_text, request.essay_b_text, knobs)
        draw_key = request.correlation_id if knobs.fresh_draw else ""
        a_wins = pair_rng(self.seed, request, self.name, draw_key).random() < p_a
        p_winner = p_a if a_wins else 1.0 - p_a
        confidence = 1.0 + 4.0 * max(0.0, 2.0 * p_winner - 1.0)
        justification = _feature_justification(request, a_wins, favoured=p_winner >= 0.5)
        return Judgement(
            winner="Essay A" if a_wins else "Essay B",
            confidence=round(confidence, 2),
            justification=justification,
            error=None,
            provider=MOCK_PROVIDER,
            model=knobs.model,
            prompt_tokens=mock_prompt_tokens(request),
            completion_tokens=20 + estimate_tokens(justification),
            cost_usd=0.0,
            response_time_ms=0,
        )


def weighted_score(text: str, knobs: JudgeKnobs) -> float:
    """The quality score with each feature's points times its prompt-dependent weight."""
    points = feature_points(text_features(text))
    return sum(value * knobs.weight(name) for name, value in points.items())


_FEATURE_PHRASES = {
    "length": "a more fully developed text",
    "vocabulary range": "a wider vocabulary",
    "word length": "more precise, advanced words",
    "long words": "more advanced vocabulary",
    "sentence length": "better-controlled sentences",
    "sentence variety": "more varied sentence structure",
    "linking words": "clearer linking between ideas",
    "paragraphing": "clearer paragraphing",
    "spelling": "fewer spelling errors",
    "lowercase i": "correct capital 'I'",
    "sentence capitals": "sentences that start with capital letters",
}


def _feature_justification(request: JudgeRequest, a_wins: bool, *, favoured: bool) -> str:
    points_a = feature_points(text_features(request.essay_a_text))
    points_b = feature_points(text_features(request.essay_b_text))
    winner, loser = (points_a, points_b) if a_wins else (points_b, points_a)
    decisive = max(winner, key=lambda k: winner[k] - loser[k])
    label, other = ("Essay A", "Essay B") if a_wins else ("Essay B", "Essay A")
    score_w, score_l = sum(winner.values()), sum(loser.values())
    lead = "is stronger" if favoured else "is preferred on a close call"
    text = (
        f"{label} {lead} (text-feature score {score_w:.2f} vs {score_l:.2f} for {other}); "
        f"decisive feature: {_FEATURE_PHRASES[decisive]}."
    )
    return text[:MAX_JUSTIFICATION_CHARS]
