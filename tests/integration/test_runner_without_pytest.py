"""The README's "Use the runner without pytest" example runs as written, in a plain Python
process (no pytest), against the session's stack."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from pytest_eng5.core.outcome import Outcome
from pytest_eng5.runner.artefact import read_record, verify_checksum
from pytest_eng5.sample_data import SAMPLE_ASSETS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def _example() -> str:
    section = README[README.index("## Use the runner without pytest") :]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block is not None, "the section has a python example"
    return block.group(1)


def test_the_readme_example_runs_without_pytest(
    eng5_stack, eng5_sample_assignment, tmp_path: Path
) -> None:
    endpoints = eng5_stack.endpoints()
    env = {
        **os.environ,
        **endpoints.env,
        "ENG5_ASSETS": str(SAMPLE_ASSETS),
        "ENG5_ASSIGNMENT_ID": eng5_sample_assignment.assignment_id,
        "ENG5_COURSE_ID": eng5_sample_assignment.course_id,
        "KAFKA_BOOTSTRAP_SERVERS": endpoints.consumer_kwargs["bootstrap_servers"],
        "CJ_SERVICE_URL": str(endpoints.cj_url),
        "CONTENT_SERVICE_URL": str(endpoints.content_url),
    }
    script = tmp_path / "example.py"
    check = "\nimport sys\nassert 'pytest' not in sys.modules, 'the runner imported pytest'\n"
    script.write_text(_example() + check, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    outcome, batch_uuid, artefact = done.stdout.split()
    assert outcome == Outcome.COMPLETED
    path = tmp_path / artefact  # relative to the script's working directory
    record = read_record(path)
    assert str(record.metadata.batch_uuid) == batch_uuid
    assert record.outcome is Outcome.COMPLETED
    assert verify_checksum(json.loads(path.read_text()))


def test_every_outcome_is_explained_in_the_readme() -> None:
    table = README[README.index("### Outcomes") : README.index("## Use the runner without")]
    for outcome in Outcome:
        assert f"`{outcome.value}`" in table, outcome
