"""Shell completion generated from the command line (shtab): bash completes commands, options and
choices from the script `backup-pipeline completion bash` prints."""

from __future__ import annotations

import subprocess

from test_ids_and_defaults import run


def _complete(script: str, *words: str) -> list[str]:
    line = " ".join(("backup-pipeline",) + words)
    bash = f"""
source {script}
COMP_WORDS=(backup-pipeline {' '.join(words)}); COMP_CWORD={len(words)}
COMP_LINE={line!r}; COMP_POINT=${{#COMP_LINE}}
fn=$(complete -p backup-pipeline | sed 's/.*-F \\([^ ]*\\).*/\\1/')
$fn backup-pipeline {words[-1] if words[-1] else "''"} {words[-2] if len(words) > 1 else 'backup-pipeline'}
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    done = subprocess.run(["bash", "-c", bash], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_bash_completes_commands_options_and_choices(tmp_path):
    script = tmp_path / "backup-pipeline.bash"
    printed = run("completion", "bash")
    assert printed.returncode == 0
    script.write_text(printed.stdout)
    assert _complete(script, "res") == ["restore"]
    assert {"diff", "drill", "dump"} <= set(_complete(script, "d"))
    assert "--mode" in _complete(script, "restore", "--mo")
    assert sorted(_complete(script, "restore", "--mode", "")) == ["merge", "replace", "safe", "skip"]
    assert run("completion", "fish").returncode == 2  # a shell shtab does not write for: named, exit 2
