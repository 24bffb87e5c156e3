"""The built-in system prompt the runner sends when no system-prompt file is given.

Written for pytest-eng5. Anchor-align sends it explicitly (never silently dropped) so every run
records the prompt its judgements were made under. Execute sends no prompt unless a file is
given: HuleEdu's runner sends its own built-in prompt there, and this text sent by default would
replace the prompt a real HuleEdu CJ judges with (docs/reference-services.md, "What a HuleEdu
client sees on the wire").
"""

from __future__ import annotations

from pathlib import Path

from pytest_eng5.errors import ConfigurationError

BUILTIN_SYSTEM_PROMPT = """\
You compare two student essays written for the same English writing task (Swedish national
test, upper-secondary level). Decide which essay better fulfils the task according to the
assignment and the assessment rubric you are given. Judge communicative quality: content and
relevance, structure and coherence, range and accuracy of vocabulary and grammar. Do not
reward length for its own sake, and do not let the order of the essays, their topic stance or
their style sway you.

Answer with the winner ("Essay A" or "Essay B"), a justification of at most 50 words that
names the decisive factor, and your confidence from 1 (a guess) to 5 (certain)."""


def load_prompt_file(path: Path | None, label: str) -> str | None:
    """Text of a prompt/rubric override file (stripped); None when no file is given."""
    if path is None:
        return None
    if not path.is_file():
        raise ConfigurationError(
            f"{label} file not found: {path}", next_step=f"fix the path of the {label} file"
        )
    text = path.read_text(encoding="utf-8").strip()
    if not text:
        raise ConfigurationError(
            f"{label} file is empty: {path}", next_step=f"write the {label} into {path}"
        )
    return text
