"""The text features of one essay and the transparent quality score built from them."""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass
from functools import lru_cache

WORD_RE = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)*")
_SENTENCE_END_RE = re.compile(r"(?<=[.!?])\s+|\n+")
_LOWERCASE_I_RE = re.compile(r"(?:^|(?<=[\s,.!?;:]))i(?=['’\s,.!?;:]|$)")
_MATTR_WINDOW = 40
_LONG_WORD_LETTERS = 7

# Connectives that show cohesion beyond "and/but/so"; each distinct one counts once.
LINKING_WORDS: tuple[str, ...] = (
    "however",
    "therefore",
    "although",
    "though",
    "furthermore",
    "moreover",
    "nevertheless",
    "consequently",
    "in addition",
    "on the other hand",
    "on the one hand",
    "for example",
    "for instance",
    "such as",
    "as a result",
    "in conclusion",
    "to sum up",
    "to conclude",
    "whereas",
    "while",
    "unless",
    "instead",
    "even though",
    "first of all",
    "secondly",
    "finally",
    "besides",
    "similarly",
    "in contrast",
    "rather than",
    "after all",
    "that said",
    "admittedly",
    "ultimately",
    "since",
    "yet",
    "thus",
)

# Common learner misspellings (Swedish year-9 learners of English), lower case.
LEARNER_MISSPELLINGS: frozenset[str] = frozenset(
    {
        "alot", "becaus", "becouse", "beacuse", "becuse", "thay", "wich", "whit", "realy",
        "frend", "frends", "dont", "cant", "doesnt", "didnt", "isnt", "wont", "thats", "im",
        "lisen", "mobil", "foto", "somthing", "somtimes", "evry", "everyting", "wen", "shuld",
        "wold", "opinon", "oppinion", "consentration", "consentrate", "totaly", "finaly",
        "intresting", "diffrent", "untill", "tomorow", "verry", "wery", "belive", "beutiful",
        "peopel", "pepole", "buyed", "alredy", "allways", "ofcourse", "importent", "exampel",
        "usefull", "helpfull", "teh", "se",
    }
)  # fmt: skip


@dataclass(frozen=True)
class TextFeatures:
    """Raw measurements of one essay (see :func:`feature_points` for how they are scored)."""

    words: int
    vocabulary_mattr: float
    mean_word_length: float
    long_word_share: float
    mean_sentence_length: float
    sentence_length_sd: float
    linking_words: int
    paragraphs: int
    misspellings_per_100: float
    lowercase_i: int
    uncapitalised_sentence_share: float


def _clip01(value: float) -> float:
    return min(1.0, max(0.0, value))


def _mattr(words: list[str]) -> float:
    """Moving-average type-token ratio: mean distinct share over every window of words."""
    if not words:
        return 0.0
    if len(words) <= _MATTR_WINDOW:
        return len(set(words)) / len(words)
    ratios = [
        len(set(words[i : i + _MATTR_WINDOW])) / _MATTR_WINDOW
        for i in range(len(words) - _MATTR_WINDOW + 1)
    ]
    return statistics.fmean(ratios)


def _paragraphs(text: str) -> list[str]:
    blocks = [b for b in re.split(r"\n\s*\n", text.strip()) if b.strip()]
    if len(blocks) <= 1:  # .docx text arrives with single newlines between paragraphs
        blocks = [line for line in text.splitlines() if line.strip()]
    return blocks


def _sentences(text: str) -> list[str]:
    body = re.sub(r"^#+\s*", "", text, flags=re.MULTILINE)  # markdown heading marks
    return [s.strip() for s in _SENTENCE_END_RE.split(body) if WORD_RE.search(s)]


def _count_linking_words(lowered: str) -> int:
    return sum(1 for link in LINKING_WORDS if re.search(rf"\b{re.escape(link)}\b", lowered))


@lru_cache(maxsize=4096)
def text_features(text: str) -> TextFeatures:
    """Measure one essay."""
    raw_words = WORD_RE.findall(text)
    words = [w.lower() for w in raw_words]
    n = len(words)
    sentences = _sentences(text)
    sentence_lengths = [len(WORD_RE.findall(s)) for s in sentences] or [0]
    starts = [s.lstrip("\"'“‘(-– ")[:1] for s in sentences]
    uncapitalised = sum(1 for c in starts if c.isalpha() and c.islower())
    return TextFeatures(
        words=n,
        vocabulary_mattr=_mattr(words),
        mean_word_length=statistics.fmean(len(w) for w in words) if words else 0.0,
        long_word_share=(sum(1 for w in words if len(w) >= _LONG_WORD_LETTERS) / n) if n else 0.0,
        mean_sentence_length=statistics.fmean(sentence_lengths),
        sentence_length_sd=statistics.pstdev(sentence_lengths),
        linking_words=_count_linking_words(text.lower()),
        paragraphs=len(_paragraphs(text)),
        misspellings_per_100=(100.0 * sum(1 for w in words if w in LEARNER_MISSPELLINGS) / n)
        if n
        else 0.0,
        lowercase_i=len(_LOWERCASE_I_RE.findall(text)),
        uncapitalised_sentence_share=(uncapitalised / len(sentences)) if sentences else 0.0,
    )


def feature_points(features: TextFeatures) -> dict[str, float]:
    """Score each feature; the sum is :func:`quality_score`. Penalties are negative.

    - length: 0 at 80 words, full at 300, easing off beyond 450 (the task asks for 150-300);
    - vocabulary range: moving-average type-token ratio over 40-word windows;
    - word length and long words: mean letters per word, share of words with 7+ letters;
    - sentence length: best at 13-26 words a sentence (choppy or run-on sentences lose);
    - sentence variety: spread (standard deviation) of sentence lengths;
    - linking words: distinct connectives beyond and/but/so, up to 10;
    - paragraphing: number of paragraphs (a heading counts), up to 5;
    - spelling: common learner misspellings per 100 words (penalty);
    - lowercase "i" and sentences that do not start with a capital letter (penalties).
    """
    f = features
    length = _clip01((f.words - 80) / 220) - _clip01((f.words - 450) / 300)
    if f.mean_sentence_length < 13:
        sentence_fit = _clip01(1 - (13 - f.mean_sentence_length) / 8)
    else:
        sentence_fit = _clip01(1 - max(0.0, f.mean_sentence_length - 26) / 12)
    return {
        "length": 1.5 * length,
        "vocabulary range": 2.0 * _clip01((f.vocabulary_mattr - 0.76) / 0.18),
        "word length": 2.5 * _clip01((f.mean_word_length - 3.5) / 2.0),
        "long words": 1.5 * _clip01((f.long_word_share - 0.04) / 0.32),
        "sentence length": 1.0 * sentence_fit,
        "sentence variety": 1.0 * _clip01(f.sentence_length_sd / 10),
        "linking words": 2.0 * min(f.linking_words, 10) / 10,
        "paragraphing": 1.0 * _clip01((f.paragraphs - 1) / 4),
        "spelling": -2.5 * _clip01(f.misspellings_per_100 / 4),
        "lowercase i": -1.0 * _clip01(f.lowercase_i / 3),
        "sentence capitals": -1.5 * f.uncapitalised_sentence_share,
    }


def quality_score(text: str) -> float:
    """A transparent text-feature quality score (higher is better, roughly -5..12)."""
    return sum(feature_points(text_features(text)).values())
