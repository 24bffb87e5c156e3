"""The README stays true: the two commands come first, the options table matches the code."""

from __future__ import annotations

import re
from pathlib import Path

from pytest_eng5.settings_sources import options_markdown_table

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_starts_with_the_two_commands_ci_runs() -> None:
    first_block = re.search(r"```bash\n(.*?)```", README, re.S)
    assert first_block is not None
    assert README.index("```bash") < README.index("\n## ")
    main_job, test_command = first_block.group(1).strip().splitlines()
    assert main_job.endswith("pytest -m eng5_execute")
    ci_script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert (
        test_command.replace("pip install", "python -m pip install").replace(
            "&& pytest", "&& python -m pytest"
        )
        in ci_script
    )


def test_options_table_matches_the_settings() -> None:
    """The whole block between the markers, so a stale row before or after the table fails."""
    start = re.search(r"^<!-- options-table: [^\n]*-->\n", README, re.M)
    assert start is not None, "the README lost its options-table start marker"
    end = README.find("<!-- end options-table -->", start.end())
    assert end != -1, "the README lost its '<!-- end options-table -->' marker"
    assert README[start.end() : end] == options_markdown_table()


def test_fixtures_table_lists_every_fixture_of_the_plugin() -> None:
    from pytest_eng5 import plugin

    section = README[README.index("## Fixtures, markers and hooks") :]
    table = section[: section.index("| Marker |")]
    documented = set(re.findall(r"^\| `(eng5_\w+)` \|", table, re.M))
    fixtures = {name for name in plugin.__all__ if name.startswith("eng5_")}
    assert documented == fixtures
