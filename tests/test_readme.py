"""The README's promises: CI runs its test command verbatim."""

import re

from conftest import REPO


def _commands():
    text = (REPO / "README.md").read_text()
    quick = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", quick)


def test_readme_has_two_setup_commands_and_ci_runs_the_test_one():
    main_job, tests = _commands()
    assert "embedlens" in main_job and "pytest" in tests
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert tests in ci
