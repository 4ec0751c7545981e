"""The command line: bad input stops with one line and writes nothing; malformed lines are reported."""

from __future__ import annotations

import fcntl
import io
import json
import logging
import logging.handlers
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from botify.data_files import catalog_fingerprint, read_tracks
from botify.process import free_port
from models.atomic import atomic_files, atomic_path
from models.cli import THREADS_PER_CORE, NoInterruptTraceback, build_parser, config_from, main
from models.interrupt import STOPPED_AT_ONCE
from models.synthetic import SyntheticSpec, generate
from models.train import Seeds, default_threads, prepare

from .conftest import REPO, event, run_models, write_catalog, write_lines

OUTPUTS = tuple(f"{name}.{kind}" for name in ("lightfm", "lightfm_nofeat") for kind in ("jsonl", "npy", "catalog.json"))
OUTPUTS += ("report.md",)


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small synthetic world + logs (the simulator-through-the-service data is in test_simulated_logs)."""
    root = tmp_path_factory.mktemp("toy")
    generate(root / "data", root / "logs", SyntheticSpec(tracks=300, users=60, listens=6000, genres=6), seed=3)
    return root / "data", root / "logs"


def cli_args(command: str, data: Path, logs: Path, out: Path, *extra: str) -> list[str]:
    """`python -m models COMMAND` on the toy data, one thread, no progress bars."""
    common = ["--logs", str(logs), "--data", str(data), "--out", str(out), "--threads", "1", "--no-progress"]
    return [command, *common, *extra]


def train_args(data: Path, logs: Path, out: Path, *extra: str) -> list[str]:
    return cli_args("train", data, logs, out, "--no-tune", "--epochs", "3", *extra)


def test_malformed_lines_are_skipped_with_their_count(
    toy: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture
) -> None:
    data, logs = toy
    extra = write_lines(tmp_path / "more" / "events.jsonl.7", ["", "{broken", json.dumps({"message": "next"})])
    with caplog.at_level(logging.WARNING):
        code = main(train_args(data, logs, tmp_path / "out", "--top-k", "7") + ["--logs", str(logs), str(extra)])
    assert code == 0
    assert "skipped 2 malformed log lines of 6002" in caplog.text  # the blank line is passed over
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert (report["data"]["bad_lines"], report["data"]["files"]) == (2, 2)
    first = json.loads((tmp_path / "out" / "lightfm.jsonl").read_text().splitlines()[0])
    assert len(first["tracks"]) == 7
    assert "| LightFM + item features |" in capsys.readouterr().out
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]


def test_a_log_without_positives_stops_with_one_line_and_writes_nothing(
    tiny_world: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    logs = write_lines(tmp_path / "log" / "events.jsonl", [event(1, t, 0.1, t) for t in range(6)] + ["oops"])
    out = tmp_path / "out"
    assert main(train_args(tiny_world, logs, out)) == 1
    err = capsys.readouterr().err
    assert err == "models: error: no positives: none of 6 listens has time >= 0.7 (1 malformed log lines skipped)\n"
    assert not any((out / name).exists() for name in OUTPUTS)


@pytest.mark.parametrize("existed", [False, True])
def test_a_run_that_fails_leaves_no_folder_it_made_and_keeps_one_that_was_there(
    tiny_world: Path, tmp_path: Path, existed: bool
) -> None:
    """The output folder is made before minutes of reading logs: a run that then failed left it behind, empty."""
    logs = write_lines(tmp_path / "log" / "events.jsonl", [event(1, t, 0.1, t) for t in range(6)])
    out = tmp_path / "new" / "out"
    if existed:
        out.mkdir(parents=True)
    assert main(train_args(tiny_world, logs, out)) == 1
    assert out.is_dir() == existed and (tmp_path / "new").exists() == existed
    assert not existed or list(out.iterdir()) == []


def test_atomic_files_that_fail_remove_only_the_folders_they_made_that_are_left_empty(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    paths = [tmp_path / "new" / "deep" / "a.txt", tmp_path / "new" / "b.txt", tmp_path / "empty" / "c.txt"]
    paths.append(tmp_path / "kept" / "d.txt")
    with pytest.raises(RuntimeError), atomic_files() as files:
        for path in paths:
            files.write_text(path, "half")
        (tmp_path / "kept" / "other.txt").write_text("not this run's\n")  # written there meanwhile
        raise RuntimeError("crash while writing")
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == ["empty", "kept", "kept/other.txt"]


# make_folder in a process of its own, where another process makes `raced` right before make_folder's own mkdir of
# it (after its check that `raced` was missing): an audit hook, run just before each os.mkdir, picks that moment, so
# the race happens on every run.
RACED_MAKE_FOLDER = """
import json, os, subprocess, sys
from pathlib import Path

from models.atomic import make_folder

path, raced = Path(sys.argv[1]), sys.argv[2]
other_made = []


def other_process_makes_it_first(event, args):
    ready = event == "os.mkdir" and os.fspath(args[0]) == raced and os.path.isdir(os.path.dirname(raced))
    if ready and not os.path.lexists(raced):
        subprocess.run(["mkdir", raced], check=True)
        other_made.append(raced)


sys.addaudithook(other_process_makes_it_first)
made = make_folder(path)
print(json.dumps({"made": [str(folder) for folder in made], "other_made": other_made}))
"""


def test_a_folder_level_another_process_makes_meanwhile_is_neither_an_error_nor_made_by_the_call(
    tmp_path: Path,
) -> None:
    """Two runs making outputs under one new folder: a failed run removes what it made, not the other's level."""
    path, raced = tmp_path / "new" / "shared" / "out", tmp_path / "new" / "shared"
    done = subprocess.run(
        [sys.executable, "-c", RACED_MAKE_FOLDER, str(path), str(raced)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"made": [str(path), str(tmp_path / "new")], "other_made": [str(raced)]}
    assert path.is_dir()


def test_catalog_mismatch_exits_non_zero_with_one_line_on_stderr(tiny_world: Path, tmp_path: Path) -> None:
    logs = write_lines(tmp_path / "log" / "events.jsonl", [event(1, 99, 1.0, 1)])
    done = run_models(*train_args(tiny_world, logs, tmp_path / "out"))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "models: error: catalog mismatch: the logs mention track 99 but the catalog has tracks 0..5"
    ]
    assert not (tmp_path / "out" / "lightfm.jsonl").exists()


def test_bad_flags_are_one_line_usage_errors(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--logs", "x", "--data", "y", "--out", "z", "--min-time", "1.5"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--min-time: 1.5 is not in [0.0, 1.0]" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--logs", "x", "--data", "y", "--out", "z", "--seed", "-1"])  # numpy refuses negative seeds
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.parametrize(
    ("command", "flag", "value", "reason"),
    [
        ("train", "--threads", "100000", f"100000 is not in [1, {THREADS_PER_CORE * default_threads()}]"),
        ("train", "--epochs", "1" + "0" * 20, f"1{'0' * 20} is not in [1, 10000]"),  # was an OverflowError
        ("train", "--patience", "10001", "10001 is not in [1, 10000]"),
        ("tune", "--trials", "10001", "10001 is not in [1, 10000]"),
        ("tune", "--worker", "10" + "0" * 9, f"10{'0' * 9} is not in [0, 10000]"),  # LightFM's seed past 2**32
        ("train", "--valid-share", "nan", "not a finite number: 'nan'"),  # "the logs are too small"
        ("tune", "--min-time", "NaN", "not a finite number: 'NaN'"),  # no listen was a positive
    ],
)
def test_values_out_of_range_or_nan_are_one_line_usage_errors(
    capsys: pytest.CaptureFixture, command: str, flag: str, value: str, reason: str
) -> None:
    """--threads 100000 crashed LightFM (a segfault, no message); 20000 ran for minutes on 2 cores; a huge count
    ended in a traceback, or ran for ever; NaN passed the range check of a share."""
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--logs", "x", "--data", "y", "--out", "z", flag, value])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == f"python -m models {command}: error: argument {flag}: {reason}\n"


def test_atomic_write_leaves_nothing_behind_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "lightfm.jsonl"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash while writing")
    assert list(tmp_path.iterdir()) == []


def test_a_run_that_cannot_write_one_file_replaces_none_of_the_earlier_runs(
    toy: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """The exports and params.json were renamed into place before the plot and the report were written: a plot
    that could not be (its path a folder) left new models beside the earlier run's report."""
    data, logs = toy
    out = tmp_path / "out"
    assert main(train_args(data, logs, out, "--seed", "1")) == 0
    (out / "learning_curve.png").unlink()
    (out / "learning_curve.png").mkdir()
    before = {path.name: path.read_bytes() for path in out.iterdir() if path.is_file()}
    assert set(before) >= {*OUTPUTS, "params.json", "report.json"}
    assert main(train_args(data, logs, out, "--seed", "2", "--top-k", "5")) == 1
    err = capsys.readouterr().err
    assert err == (
        f"models: error: cannot replace {out / 'learning_curve.png'}: it is a folder (no file of this run was "
        "written)\n"
    )
    assert {path.name: path.read_bytes() for path in out.iterdir() if path.is_file()} == before
    assert not [path for path in out.iterdir() if path.name.startswith(".")]


def test_one_thread_runs_with_one_seed_export_identical_files(toy: tuple[Path, Path], tmp_path: Path) -> None:
    data, logs = toy
    for run in ("a", "b"):
        assert main(train_args(data, logs, tmp_path / run, "--seed", "11")) == 0
    for name in ("lightfm.jsonl", "lightfm.npy", "lightfm_nofeat.jsonl", "lightfm_nofeat.npy"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_two_tune_workers_share_one_study_file(toy: tuple[Path, Path], tmp_path: Path) -> None:
    data, logs = toy
    args = cli_args("tune", data, logs, tmp_path, "--trials", "6", "--epochs", "2")
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "models", *args, "--worker", str(w)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in (0, 1)
    ]
    results, trial_lines = [], 0
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        results.append(json.loads(out))
        trial_lines += len(re.findall(r"Trial \d+ (?:finished|pruned)", err))  # progress without a terminal
    assert results[0]["study"] == results[1]["study"]
    assert sum(r["new_trials"] for r in results) >= 6
    assert trial_lines == sum(r["new_trials"] for r in results)
    assert max(r["finished_trials"] for r in results) >= 6
    assert (tmp_path / "study.db").exists()


def test_ctrl_c_while_tuning_is_one_line_and_writes_no_export(toy: tuple[Path, Path], tmp_path: Path) -> None:
    """Optuna logs the trial Ctrl-C stopped; without the interrupt's traceback, and `models` says so in one line."""
    data, logs = toy
    out = tmp_path / "out"
    args = cli_args("train", data, logs, out, "--trials", "10000", "--epochs", "20")
    run = subprocess.Popen([sys.executable, "-m", "models", *args], cwd=REPO, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(120, run.kill)  # a run that ignored the signal ends the reads below, and fails
    watchdog.start()
    try:
        seen = []
        for line in run.stderr:  # Optuna's line per finished trial, without progress bars
            seen.append(line)
            if re.search(r"Trial \d+ (?:finished|pruned)", line):
                break
        run.send_signal(signal.SIGINT)
        rest = run.stderr.read()
        assert run.wait(timeout=60) == 130, seen + [rest]
    finally:
        watchdog.cancel()
        run.kill()
        run.wait()
        run.stderr.close()
    assert rest.splitlines()[-1] == "models: interrupted"
    assert "Traceback" not in "".join(seen) + rest
    assert not any((out / name).exists() for name in OUTPUTS)


def waits_for_a_lock(pid: int) -> bool:
    """Whether process `pid` is blocked waiting for a file lock (flock) another process holds."""
    return any(line.split()[1:2] == ["->"] and str(pid) in line.split() for line in open("/proc/locks"))


def ctrl_c_twice_while_it_waits(args: list[str], lock: Path) -> tuple[int, str, float]:
    """Run `python ARGS` while this process holds `lock`: once it waits for the lock (where Python cannot run a
    signal handler, as during a LightFM epoch), send it two SIGINTs; its exit code, stderr and the seconds it took
    to end after the first."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        run = subprocess.Popen([sys.executable, *args], cwd=REPO, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 120
            while not waits_for_a_lock(run.pid):
                assert run.poll() is None and time.monotonic() < deadline, "it never waited for the lock"
                time.sleep(0.02)
            run.send_signal(signal.SIGINT)  # held until a safe point
            time.sleep(0.2)
            first = time.monotonic()
            run.send_signal(signal.SIGINT)
            code = run.wait(timeout=30)  # before the lock is given up: it was not waited for
            return code, run.stderr.read(), time.monotonic() - first
        finally:
            run.kill()
            run.wait()
            run.stderr.close()


def test_a_second_ctrl_c_stops_tuning_at_once_while_it_waits(toy: tuple[Path, Path], tmp_path: Path) -> None:
    """The first Ctrl-C waits for a safe point (the end of an epoch, here the study's lock another worker holds);
    the second was held as well, and the run went on waiting. Now it stops at once: 130, one line, and only the
    study's files (no result) in --out."""
    data, logs = toy
    out = tmp_path / "out"
    args = cli_args("tune", data, logs, out, "--trials", "2", "--epochs", "2")
    code, stderr, seconds = ctrl_c_twice_while_it_waits(["-m", "models", *args], out / "study.db.lock")
    assert (code, stderr) == (130, STOPPED_AT_ONCE + "\n") and seconds < 10
    assert [path.name for path in out.iterdir()] == ["study.db.lock"]


def test_a_second_ctrl_c_stops_train_at_once_and_leaves_no_folder_it_made(
    toy: tuple[Path, Path], tmp_path: Path
) -> None:
    """`train` tunes first, with the same hold: stopped at once there, it removes the --out folder it made."""
    data, logs = toy
    study = tmp_path / "studies" / "study.db"
    args = cli_args("train", data, logs, tmp_path / "out", "--trials", "2", "--epochs", "2", "--study", str(study))
    code, stderr, seconds = ctrl_c_twice_while_it_waits(["-m", "models", *args], study.with_name("study.db.lock"))
    assert (code, stderr) == (130, STOPPED_AT_ONCE + "\n") and seconds < 10
    assert not (tmp_path / "out").exists()


WRITES_THEN_WAITS = """
import fcntl, sys
from pathlib import Path
from models.atomic import atomic_files
from models.interrupt import held_interrupt, second_interrupt_stops_at_once

with second_interrupt_stops_at_once(), atomic_files() as files, held_interrupt(), open(sys.argv[2], "a") as lock:
    files.write_text(Path(sys.argv[1]) / "report.json", "{}")
    fcntl.flock(lock, fcntl.LOCK_EX)
"""


def test_a_second_ctrl_c_discards_the_files_under_way(tmp_path: Path) -> None:
    """Stopped at once, a run runs no `finally`: its temporary files (and the folder made for them) go first."""
    out, lock = tmp_path / "out", tmp_path / "lock"
    code, stderr, _ = ctrl_c_twice_while_it_waits(["-c", WRITES_THEN_WAITS, str(out), str(lock)], lock)
    assert (code, stderr) == (130, STOPPED_AT_ONCE + "\n")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["lock"]


def test_optuna_logs_a_trial_stopped_by_ctrl_c_without_the_traceback(toy: tuple[Path, Path], tmp_path: Path) -> None:
    """A Ctrl-C inside a trial (not only between two, as above) reaches Optuna's handler without its traceback;
    other errors keep theirs."""
    data, logs = toy
    main(train_args(data, logs, tmp_path / "out"))
    handler = next(h for h in logging.getLogger("optuna").handlers if type(h) is logging.StreamHandler)  # Optuna's
    assert isinstance(handler.formatter, NoInterruptTraceback)
    assert not isinstance(handler.formatter.inner, NoInterruptTraceback)  # once, however often main runs
    for error, traceback_kept in ((KeyboardInterrupt(), False), (ValueError("bad"), True)):
        try:
            raise error
        except BaseException:
            record = logging.LogRecord("optuna", logging.WARNING, __file__, 1, "Trial 3 failed", None, sys.exc_info())
        line = handler.format(record)
        assert "Trial 3 failed" in line and ("Traceback" in line) == traceback_kept


def test_other_handlers_of_optuna_records_keep_the_ctrl_c_traceback(toy: tuple[Path, Path], tmp_path: Path) -> None:
    """NoInterruptTraceback was a filter that set the shared record's exc_info to None: a handler after Optuna's
    (a log file, pytest's capture) lost the traceback as well."""
    data, logs = toy
    main(train_args(data, logs, tmp_path / "out"))
    optuna_logger = logging.getLogger("optuna")
    optuna_handler = next(h for h in optuna_logger.handlers if type(h) is logging.StreamHandler)
    other = logging.handlers.BufferingHandler(capacity=10)
    other.setFormatter(logging.Formatter("%(message)s"))
    optuna_logger.addHandler(other)
    written = io.StringIO()
    stream = optuna_handler.setStream(written)
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            optuna_logger.warning("Trial 3 failed", exc_info=True)
    finally:
        optuna_handler.setStream(stream)
        optuna_logger.removeHandler(other)
    assert "Trial 3 failed" in written.getvalue() and "Traceback" not in written.getvalue()
    [record] = other.buffer
    assert record.exc_info is not None and record.exc_info[0] is KeyboardInterrupt
    assert "Traceback" in other.format(record)  # which caches the traceback's text on the record
    assert "Traceback" not in optuna_handler.format(record)  # cached or not, Optuna's line goes without it


def tune_args(data: Path, logs: Path, out: Path, study: str, trials: int) -> list[str]:
    return cli_args("tune", data, logs, out, "--study", study, "--trials", str(trials), "--epochs", "2")


def test_a_study_given_by_database_url_is_shared_and_resumed(
    toy: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    data, logs = toy
    url = f"sqlite:///{tmp_path / 'shared' / 'optuna.db'}"  # what a PostgreSQL URL does across machines
    (tmp_path / "shared").mkdir()
    assert main(tune_args(data, logs, tmp_path / "a", url, 2)) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(tune_args(data, logs, tmp_path / "b", url, 3)) == 0  # another worker, another output folder
    second = json.loads(capsys.readouterr().out)
    assert second["study"] == first["study"]
    assert (first["new_trials"], second["new_trials"], second["finished_trials"]) == (2, 1, 3)
    assert (tmp_path / "shared" / "optuna.db").exists() and not (tmp_path / "a" / "study.db").exists()


@pytest.mark.parametrize(
    ("study", "shown"),
    [
        ("nosuchdb://host/db", "nosuchdb://host/db"),
        ("postgresql://botify:s3cret@127.0.0.1:1/optuna", "postgresql://botify:***@127.0.0.1:1/optuna"),
        # Optuna's URL template stopped these with a ValueError and a KeyError traceback
        ("postgresql://botify:s3cret{@127.0.0.1:1/optuna", "postgresql://botify:***@127.0.0.1:1/optuna"),
        ("postgresql://botify:s3cret@127.0.0.1:1/{optuna}", "postgresql://botify:***@127.0.0.1:1/%7Boptuna%7D"),
        ("postgresql://botify:s3cret@dbhost:54x2/optuna", "postgresql://..."),  # a port that is no number: traceback
    ],
)
def test_a_storage_that_cannot_be_opened_is_one_line_without_its_password(
    toy: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture, study: str, shown: str
) -> None:
    data, logs = toy
    assert main(tune_args(data, logs, tmp_path, study, 2)) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"models: error: cannot open the Optuna storage '{shown}': ") and err.count("\n") == 1
    assert ("as a template" in err) == ("{" in study)  # the braces' hint only where there are braces


def test_no_refit_exports_none_of_a_users_positives_validation_and_k_core_dropped_ones_included(
    toy: tuple[Path, Path], tmp_path: Path
) -> None:
    data, logs = toy
    args = train_args(data, logs, tmp_path / "out", "--no-refit", "--top-k", "200")
    assert main(args) == 0
    config = config_from(build_parser().parse_args(args))
    inter = prepare(config, np.random.default_rng(Seeds.derive(config.seed).split)).interactions
    rows = {user: row for row, user in enumerate(inter.users.tolist())}
    assert inter.valid.nnz > 0 and inter.heard.nnz > inter.all.nnz  # the k-core dropped some tracks
    for name in ("lightfm.jsonl", "lightfm_nofeat.jsonl"):
        for line in (tmp_path / "out" / name).read_text().splitlines():
            record = json.loads(line)
            positives = set(inter.heard[rows[record["user"]]].indices.tolist())
            assert positives.isdisjoint(record["tracks"]), record["user"]


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"loss": "foo"}, "loss must be one of warp, bpr, warp-kos, got 'foo'"),
        ({"lightfm": {"learning_rate": -1}}, "learning_rate must be a finite number > 0, got -1"),
        ({"no_components": 0}, "no_components must be an integer >= 1, got 0"),
        ({"max_sampled": 2.5}, "max_sampled must be an integer >= 1, got 2.5"),
        ({"lightfm_nofeat": {"item_alpha": float("nan")}}, "item_alpha must be a finite number >= 0, got nan"),
    ],
)
def test_parameters_out_of_range_stop_with_one_line_before_the_logs_are_read(
    tiny_world: Path, tmp_path: Path, capsys: pytest.CaptureFixture, params: dict, reason: str
) -> None:
    path = tmp_path / "params.json"
    path.write_text(json.dumps(params))
    out = tmp_path / "out"
    assert main(train_args(tiny_world, tmp_path / "no_logs_yet", out, "--params", str(path))) == 1
    assert capsys.readouterr().err == f"models: error: cannot use parameters from {path}: {reason}\n"
    assert not out.exists()


def test_a_model_that_diverges_is_one_line_and_writes_no_export(
    toy: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """LightFM raises a ValueError when its parameters stop being finite; it ended the run with a traceback."""
    data, logs = toy
    path = tmp_path / "params.json"
    path.write_text(json.dumps({"learning_rate": 1e30, "loss": "bpr"}))
    out = tmp_path / "out"
    assert main(train_args(data, logs, out, "--params", str(path))) == 1
    err = capsys.readouterr().err
    diverged = (
        r"models: error: LightFM diverged in epoch \d+ of lightfm(_nofeat)? \(its parameters are no longer finite\)"
    )
    assert re.fullmatch(f"{diverged} with learning_rate=1e\\+30, loss=bpr: lower the learning rate\n", err)
    assert not any((out / name).exists() for name in (*OUTPUTS, "params.json"))


@pytest.mark.parametrize("command", ["train", "tune"])
def test_an_out_folder_inside_a_log_folder_is_refused(
    command: str, toy: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Every file under a log folder is read: a rerun read the first run's exports and study.db as 1,000 malformed
    log lines."""
    data, logs = toy
    folder = tmp_path / "logs"
    shutil.copytree(logs, folder / "day1")
    out = folder / "models"
    assert main(cli_args(command, data, folder, out, "--trials", "1", "--epochs", "1")) == 1
    assert capsys.readouterr().err == (
        f"models: error: --out {out} is inside the log folder {folder}: write the models elsewhere\n"
    )
    assert sorted(p.name for p in folder.iterdir()) == ["day1"]


def test_logs_given_twice_are_both_read(toy: tuple[Path, Path], tmp_path: Path) -> None:
    """`--logs day1 --logs day2` trained on day2 alone, without a word (argparse kept the last)."""
    data, logs = toy
    more = write_lines(tmp_path / "more" / "events.jsonl", [event(1, 0, 1.0, 1), event(2, 0, 1.0, 2)])
    assert main(train_args(data, logs, tmp_path / "out") + ["--logs", str(more)]) == 0
    read = json.loads((tmp_path / "out" / "report.json").read_text())["data"]
    assert (read["files"], read["lines"]) == (2, len(Path(logs, "events.jsonl").read_text().splitlines()) + 2)


def test_a_warp_model_that_diverges_prints_only_the_one_line(toy: tuple[Path, Path], tmp_path: Path) -> None:
    """WARP's parameters turn NaN, and LightFM's check (a sum of them) printed numpy's two-line warning first."""
    data, logs = toy
    path = tmp_path / "params.json"
    path.write_text(json.dumps({"learning_rate": 1e30, "loss": "warp"}))
    done = run_models(*train_args(data, logs, tmp_path / "out", "--params", str(path)))
    assert done.returncode == 1
    assert done.stderr.startswith("models: error: LightFM diverged in epoch 1 of lightfm_nofeat")
    assert done.stderr.count("\n") == 1, done.stderr


def test_params_without_no_tune_is_an_input_error(
    tiny_world: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = tmp_path / "params.json"
    path.write_text("{}")
    assert main(cli_args("train", tiny_world, tmp_path / "logs", tmp_path / "out", "--params", str(path))) == 1
    assert capsys.readouterr().err == (
        "models: error: --params is used only with --no-tune (tuning chooses the parameters otherwise)\n"
    )


@pytest.mark.parametrize("command", ["train", "tune"])
@pytest.mark.parametrize("under", ["", "sub/folder"])
def test_an_output_path_that_is_or_is_under_a_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture, command: str, under: str
) -> None:
    """Under a file, it was '[Errno 20] Not a directory' once the logs had been read."""
    out = tmp_path / "out"
    out.write_text("a file, not a folder")
    with pytest.raises(SystemExit) as exit_info:
        main(cli_args(command, tmp_path / "data", tmp_path / "logs", out / under))
    assert exit_info.value.code == 2
    assert (
        capsys.readouterr().err == f"python -m models {command}: error: argument --out: {out} is a file, not a folder\n"
    )
    assert out.read_text() == "a file, not a folder"


@pytest.mark.parametrize("flag", ["--out", "--logs", "--data"])
def test_an_empty_path_is_refused(capsys: pytest.CaptureFixture, flag: str) -> None:
    """It meant the current folder: a report written there, or every file under it read as a log."""
    args = {"--logs": "x", "--data": "y", "--out": "z"} | {flag: ""}
    with pytest.raises(SystemExit) as exit_info:
        main(["train", *[part for pair in args.items() for part in pair]])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == f"python -m models train: error: argument {flag}: an empty path\n"


def test_an_empty_study_is_refused(capsys: pytest.CaptureFixture) -> None:
    """It fell back to OUT/study.db without a word."""
    with pytest.raises(SystemExit) as exit_info:
        main(["tune", "--logs", "x", "--data", "y", "--out", "z", "--study", " "])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        "python -m models tune: error: argument --study: an empty storage: give a SQLite file or a database URL\n"
    )


def test_a_catalog_that_is_not_utf8_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    tracks = write_catalog(tmp_path / "data", 6) / "tracks.json"
    tracks.write_bytes(tracks.read_bytes().replace(b'"t2"', b'"t\xff"'))
    assert main(train_args(tmp_path / "data", tmp_path / "logs", tmp_path / "out")) == 1
    assert capsys.readouterr().err == f"models: error: {tracks}:3: not JSON (not UTF-8 text or nested too deep)\n"


@pytest.mark.parametrize(("eval_users", "watched"), [(0, "half"), (5, 5), (10_000, "half")])
def test_the_report_scores_validation_users_that_tuning_never_watched(
    toy: tuple[Path, Path], tmp_path: Path, eval_users: int, watched: int | str
) -> None:
    data, logs = toy
    args = train_args(data, logs, tmp_path / "out", "--eval-users", str(eval_users))
    config = config_from(build_parser().parse_args(args))
    prepared = prepare(config, np.random.default_rng(Seeds.derive(config.seed).split))
    monitored, reported = prepared.monitor.rows.tolist(), prepared.evaluator.rows.tolist()
    validation = prepared.interactions.eval_users().tolist()
    assert not set(monitored) & set(reported)
    assert sorted(monitored + reported) == validation
    assert len(monitored) == (len(validation) // 2 if watched == "half" else watched)


def test_a_load_that_fails_keeps_the_report_of_what_was_trained(
    toy: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, own_redis
) -> None:
    data, logs = toy
    client = own_redis.client()
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", 1)  # Redis answers, and refuses every write: the load fails after training
    monkeypatch.setenv("REDIS_URL", own_redis.url)
    assert main(train_args(data, logs, tmp_path / "out", "--load")) == 1
    err = capsys.readouterr().err
    assert (
        err.startswith("models: error: botify load failed: botify load: Redis refused a write: ")
        and err.count("\n") == 1
    )
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["models"] and "botify load" not in report["timings"]
    assert (tmp_path / "out" / "report.md").is_file()


def test_load_with_a_redis_that_does_not_answer_stops_before_training(
    toy: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It trained (minutes, at scale) and only then found the REDIS_URL it was to publish to unreachable."""
    data, logs = toy
    port = free_port()  # nothing listens there
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{port}/0")
    out = tmp_path / "out"
    assert main(train_args(data, logs, out, "--load")) == 1
    assert capsys.readouterr().err == (
        f"models: error: --load: cannot use the Redis of REDIS_URL (127.0.0.1:{port}/0): Error 111 connecting to "
        f"127.0.0.1:{port}. Connection refused.; nothing was trained\n"
    )
    assert not out.exists()


def test_load_of_a_world_botify_cannot_serve_stops_before_training(
    toy: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Training needs no titles nor top_tracks.json, botify load does: it trained (minutes, at scale) and only then
    found the world unfit to publish."""
    data, logs = toy
    world = tmp_path / "world"
    shutil.copytree(data, world)
    (world / "top_tracks.json").unlink()
    out = tmp_path / "out"
    assert main(train_args(world, logs, out, "--load")) == 1
    assert capsys.readouterr().err == (
        f"models: error: --load: {world / 'top_tracks.json'}: no such file; nothing was trained\n"
    )
    assert not out.exists()


def test_the_export_records_the_world_it_was_trained_on_and_botify_refuses_it_for_another(
    toy: tuple[Path, Path], tmp_path: Path, redis_server
) -> None:
    data, logs = toy
    assert main(train_args(data, logs, tmp_path / "out")) == 0
    fingerprint = catalog_fingerprint(read_tracks(data / "tracks.json"))
    for name in ("lightfm", "lightfm_nofeat"):
        assert json.loads((tmp_path / "out" / f"{name}.catalog.json").read_text()) == {"catalog": fingerprint}
    assert json.loads((tmp_path / "out" / "report.json").read_text())["data"]["catalog"] == fingerprint
    other = tmp_path / "other"  # as many tracks, artists handed round: another world of the same size
    other.mkdir()
    tracks = read_tracks(data / "tracks.json")
    artists = [track["artist"] for track in tracks]
    rows = [{**track, "artist": artist} for track, artist in zip(tracks, artists[1:] + artists[:1], strict=True)]
    (other / "tracks.json").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (other / "top_tracks.json").write_bytes((data / "top_tracks.json").read_bytes())
    recs = f"lightfm={tmp_path / 'out' / 'lightfm.jsonl'}"
    env = {"REDIS_URL": redis_server.url, "PATH": ""}
    for world, refused in ((other, True), (data, False)):
        load = [sys.executable, "-m", "botify", "load", "--data", str(world), "--recs", recs, "--allow-stale-sets"]
        done = subprocess.run(load, cwd=REPO, env=env, capture_output=True, text=True, check=False)
        assert (done.returncode, "was trained on another catalog" in done.stderr) == (int(refused), refused)


def test_logs_of_a_smaller_world_are_warned_about(
    toy: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data, logs = toy  # 300 tracks
    bigger = write_catalog(tmp_path / "bigger", 1000)
    args = train_args(bigger, logs, tmp_path / "out")
    config = config_from(build_parser().parse_args(args))
    with caplog.at_level(logging.WARNING):
        prepare(config, np.random.default_rng(0))
    high = max(json.loads(line)["track"] for path in logs.iterdir() for line in path.read_text().splitlines())
    assert (
        f"the logs mention tracks up to {high} only, and the catalog has tracks 0..999: are they logs of "
        "another (smaller) world?" in caplog.text
    )
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        prepare(
            config_from(build_parser().parse_args(train_args(data, logs, tmp_path / "out"))), np.random.default_rng(0)
        )
    assert "smaller" not in caplog.text
