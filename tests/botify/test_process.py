"""botify.process: finding the processes a process started."""

import os
import subprocess
import sys
from pathlib import Path

from botify.process import child_pids


def test_child_pids_lists_a_running_child_and_forgets_it_once_it_ended():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.pid in child_pids(os.getpid())
    finally:
        child.kill()
        child.wait()
    assert child.pid not in child_pids(os.getpid())


def test_a_process_that_has_ended_has_no_children():
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    assert child_pids(ended.pid) == []


def test_a_service_names_its_gunicorn_workers(start_botify, tiny_world):
    service = start_botify(tiny_world, workers=2)
    workers = service.worker_pids()
    assert len(workers) == 2
    for pid in workers:
        assert b"gunicorn" in Path(f"/proc/{pid}/cmdline").read_bytes()
