"""What the pipeline's tests share: a tiny run on its own embedded Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path


def tiny_pipeline(
    out: Path,
    stderr: int | None = subprocess.DEVNULL,
    parallel: bool = True,
    shell: dict[str, str] | None = None,
    own_group: bool = False,
    ctrl_c_ignored: bool = False,
) -> subprocess.Popen:
    """`python -m pipeline --scale tiny` on its own embedded Redis; `--parallel`: a service of several workers and
    a simulator of several processes to stop; `shell`: variables the user's shell adds; `own_group`: in a process
    group of its own, as a terminal's foreground job (its Ctrl-C is `os.killpg(run.pid, SIGINT)`); `ctrl_c_ignored`:
    started with SIGINT ignored, as a script's background job (`python -m pipeline &`)."""
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"} | (shell or {})
    flags = ["--parallel"] if parallel else []
    command = [sys.executable, "-m", "pipeline", "--scale", "tiny", *flags, "--out", str(out)]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=stderr, text=True, start_new_session=own_group,
        preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ctrl_c_ignored else None,
    )  # fmt: skip
