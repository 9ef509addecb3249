"""Bad input and damaged stores, tried as a hostile but realistic user would: each case ends
in one clear line on stderr (no traceback), the documented exit code, and nothing written
outside the results folder; damage is reported, and repaired by the next run."""
from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, assert_ran_once, free_port, ledger, one_line, symsweep, wait_for_port
from symsweep import QueryError, open_results

SYN = """
name: syn
task: synthetic
fixed: {sleep_s: 0.0}
axes: {steps: [5, 10]}
seeds: 3
runs_per_trial: 3
"""


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished synthetic sweep (inline); tests copy it before damaging it."""
    root = tmp_path_factory.mktemp("finished")
    spec = root / "syn.yaml"
    spec.write_text(SYN)
    res = symsweep("run", str(spec), "--results", str(root / "res"), "--executor", "inline")
    assert res.returncode == 0, res.stderr
    return root / "res" / "syn"


@pytest.fixture
def sweep(finished, tmp_path) -> Path:
    shutil.copytree(finished, tmp_path / "res" / "syn")
    (tmp_path / "syn.yaml").write_text(SYN)
    return tmp_path / "res" / "syn"


# ----------------------------------------------------------------------------- store damage


def _truncate_one_run_row(sweep: Path) -> Path:
    """A run's own row file, unreadable (as a killed writer of a re-run leaves it)."""
    rid = ledger(sweep)["run_id"].iloc[0]
    path = sweep / "runs" / f"{rid}.parquet"
    path.write_bytes(b"PAR1" + os.urandom(96))
    return path


def test_query_skips_an_unreadable_run_file_and_names_it(sweep):
    (segment,) = (sweep / "runs").glob("seg-*.parquet")
    bad = sweep / "runs" / "0000000000000000.parquet"
    shutil.copy(segment, bad)
    bad.write_bytes(bad.read_bytes()[:100])  # truncate -s 100
    for where in (sweep, sweep.parent):  # one sweep, and a results root
        res = symsweep("query", "SELECT count(*) AS n FROM runs", "--results", str(where))
        assert res.returncode == 0, res.stderr
        assert res.stdout.split() == ["n", "6"]
        assert f"warning: skipped unreadable file {bad}" in res.stderr and "Traceback" not in res.stderr
    with open_results(str(sweep)) as r:
        assert r.sql("SELECT count(*) AS n FROM runs")["n"].tolist() == [6]
        assert [p for p, _ in r.skipped] == [str(bad)]
        with pytest.raises(QueryError):
            r.sql("SELECT nope FROM runs")


def test_aggregate_names_the_runs_it_could_not_read(sweep):
    (segment,) = (sweep / "runs").glob("seg-*.parquet")
    segment.write_bytes(segment.read_bytes()[:100])
    res = symsweep("aggregate", str(sweep))
    assert res.returncode == 0
    assert f"warning: unreadable run file left out of the aggregates: {segment}" in res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("command", ["status", "aggregate", "resume", "report", "compact"])
def test_an_unparsable_frozen_spec_is_one_line_naming_the_file(sweep, command):
    (sweep / "spec.yaml").write_text("name: x\ntask: [unclosed\n")
    before = _files(sweep)
    err = one_line(symsweep(command, str(sweep), *(["--executor", "inline"] if command == "resume" else [])))
    assert f"{sweep / 'spec.yaml'}:3:1: not valid YAML" in err
    assert _files(sweep) == before


def test_run_into_a_folder_with_an_unparsable_frozen_spec_is_refused(sweep):
    (sweep / "spec.yaml").write_text("name: x\ntask: [unclosed\n")
    err = one_line(symsweep("run", str(sweep.parent.parent / "syn.yaml"), "--results", str(sweep.parent),
                            "--executor", "inline"))
    assert "spec.yaml:3:1: not valid YAML" in err


def test_a_damaged_history_or_artifact_is_listed_and_its_run_runs_again(sweep):
    runs = ledger(sweep)
    victim, other = runs["run_id"].iloc[0], runs["run_id"].iloc[1]
    # history: one run's records lost (its row says how many it had)
    (seg,) = (sweep / "history").glob("seg-*.parquet")
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from symsweep.store import parquet_bytes
    from symsweep._store_files import segment_name
    table = pq.read_table(seg)
    data = parquet_bytes(table.filter(pc.not_equal(table["run_id"], victim)))
    seg.unlink()  # a whole segment, with its digest, that lacks the run's records
    (sweep / "history" / segment_name(data)).write_bytes(data)
    # artifact: truncated (found by size) and flipped in place (found by --verify)
    npz = sweep / "artifacts" / "weights" / f"{other}.npz"
    npz.write_bytes(npz.read_bytes()[:-10])
    third = runs["run_id"].iloc[2]
    npz3 = sweep / "artifacts" / "weights" / f"{third}.npz"
    data = bytearray(npz3.read_bytes())
    data[-30] ^= 0xFF
    npz3.write_bytes(bytes(data))

    status = symsweep("status", str(sweep), "--slowest", "0")
    assert status.returncode == 0
    expected = int(runs.set_index("run_id").loc[victim, "history_rows"])
    assert f"damaged: run {victim}: history (0 of {expected} records)" in status.stdout
    assert f"damaged: run {other}: artifact weights" in status.stdout
    assert third not in status.stdout  # same size: only a full check finds it
    verify = symsweep("status", str(sweep), "--verify", "--slowest", "0")
    assert f"damaged: run {third}: artifact weights (sha256 differs from the row)" in verify.stdout
    assert "pending: 3" in verify.stdout
    # reading the flipped artifact fails loudly
    from symsweep import SweepStore, StoreError
    store = SweepStore(str(sweep))
    with pytest.raises(StoreError, match=f"artifact 'weights' of run {third} is damaged"):
        store.artifact_loader(store.read_runs())(third, "weights")

    res = symsweep("resume", str(sweep), "--executor", "inline", "--verify")
    assert res.returncode == 0, res.stderr
    assert "3 already done, 3 to run" in res.stdout and res.stdout.count("moved to quarantine/") == 3
    again = symsweep("status", str(sweep), "--verify")
    assert "damaged: run" not in again.stdout and "pending: 0" in again.stdout
    runs = ledger(sweep).set_index("run_id")
    assert runs.loc[[victim, other, third], "attempt"].tolist() == [2, 2, 2]
    history = store.read_history([victim])
    assert len(history) == expected  # the re-run's records, from its own file (the segment's are gone)
    np.testing.assert_array_equal(store.artifact_loader(store.read_runs())(third, "weights")["w"],
                                  store.read_artifact(third, "weights")["w"])


def _flip_bytes(path: Path, at: float, width: int = 16) -> None:
    data = bytearray(path.read_bytes())
    i = int(len(data) * at)
    data[i:i + width] = bytes(b ^ 0xFF for b in data[i:i + width])
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("sub", ["history", "runs"])
def test_a_flip_in_any_page_of_a_segment_is_found_reported_in_few_lines_and_repaired(sweep, sub):
    """16 flipped bytes inside a segment, in pages the plan does not read (a history value, a
    metric column): status and resume used to say "complete" while query dropped the whole
    file for good. Now the check finds it, the file goes to quarantine, its runs run again."""
    before = ledger(sweep)
    (seg,) = (sweep / sub).glob("seg-*.parquet")
    _flip_bytes(seg, 0.4)
    status = symsweep("status", str(sweep), "--slowest", "0")
    assert status.returncode == 0 and "unreadable file" in status.stdout, status.stdout
    damage = [line for line in status.stdout.splitlines() if line.startswith("damaged:")]
    assert 1 <= len(damage) <= 3, damage  # a few lines, not one per run
    res = symsweep("resume", str(sweep), "--executor", "inline")
    assert res.returncode == 0, res.stderr
    assert "6 to run" in res.stdout and len([ln for ln in res.stdout.splitlines() if "warning" in ln]) <= 3
    assert not list((sweep / sub).glob(seg.name)) and list((sweep / "quarantine").glob(f"*{seg.name}"))
    runs = ledger(sweep)
    assert len(runs) == 6 and set(runs["status"]) == {"completed"}
    history = open_results(str(sweep)).table("history").to_pandas()
    assert history.groupby("run_id").size().to_dict() == runs.set_index("run_id")["history_rows"].to_dict()
    assert symsweep("status", str(sweep), "--verify").stdout.count("damaged:") == 0
    assert before["metric_loss"].notna().all()


@pytest.mark.parametrize("content", [b'{"pid": 12, "host": garbage', b"", b"[]"])
def test_an_unreadable_lock_is_taken_over_with_a_note(sweep, content):
    (sweep / ".lock").write_bytes(content)
    status = symsweep("status", str(sweep))
    assert "lock file is unreadable" in status.stdout
    res = symsweep("resume", str(sweep), "--executor", "inline")
    assert res.returncode == 0, res.stderr
    assert "took over an unreadable lock file" in res.stdout
    assert not (sweep / ".lock").exists()


def test_temp_files_of_killed_writers_are_removed_by_the_next_run(sweep):
    for sub in ("runs", "history", "artifacts", ""):
        (sweep / sub / ".tmp-deadbeef").write_bytes(b"half a file")
    res = symsweep("resume", str(sweep), "--executor", "inline")
    assert res.returncode == 0 and "removed 4 temp files" in res.stdout
    assert not list(sweep.rglob(".tmp-*"))


def test_resume_works_on_the_folder_it_is_given_even_after_a_rename(sweep):
    (sweep / "runs" / next(p.name for p in (sweep / "runs").iterdir())).unlink()  # all six pending now
    renamed = sweep.parent / "renamed"
    sweep.rename(renamed)
    res = symsweep("resume", str(renamed), "--executor", "inline")
    assert res.returncode == 0, res.stderr
    assert "6 to run" in res.stdout and str(renamed) in res.stdout
    assert not sweep.exists()  # nothing written into a new folder under the old name
    assert_ran_once(renamed, 6)


# ----------------------------------------------------------------------------- disk full


def _tmpfs(folder: Path, options: str, what: str):
    """A 1 MB tmpfs mounted at `folder` for one test (root only: skipped elsewhere)."""
    folder.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount {what} here (needs root): {res.stderr.decode().strip()}")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.fixture
def tiny_disk(tmp_path):
    yield from _tmpfs(tmp_path / "disk", "size=1m", "a small tmpfs")


# ray: slow tier (the write path under a full disk is the store's, the same on both executors)
@pytest.mark.parametrize("executor", ["inline", pytest.param("ray", marks=pytest.mark.slow)])
def test_a_full_disk_is_one_line_leaves_no_half_files_and_resume_completes(tiny_disk, tmp_path, executor):
    spec = tmp_path / "big.yaml"
    spec.write_text(SYN.replace("seeds: 3", "seeds: 60").replace("runs_per_trial: 3", "runs_per_trial: 60")
                    .replace("name: syn", "name: big"))
    # max_failures=0: Tune would retry each dying trial (the disk stays full), and slowly
    res = symsweep("run", str(spec), "--results", str(tiny_disk), "--executor", executor, "--num-cpus", "1",
                   "--set", "max_failures=0")
    assert res.returncode == 1, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    assert f"no space left on {tiny_disk}" in res.stderr + res.stdout
    assert not list(tiny_disk.rglob(".tmp-*"))
    assert not (tiny_disk / "big" / ".lock").exists()
    done = len(ledger(tiny_disk / "big"))
    assert 0 < done < 120, done
    subprocess.run(["mount", "-o", "remount,size=64m", str(tiny_disk)], check=True)
    res = symsweep("resume", str(tiny_disk / "big"), "--executor", executor, "--num-cpus", "1")
    assert res.returncode == 0, res.stderr
    assert_ran_once(tiny_disk / "big", 120)
    assert not list(tiny_disk.rglob(".tmp-*"))


def test_a_lock_that_cannot_be_written_leaves_no_empty_lock(tiny_disk, tmp_path):
    filler = tiny_disk / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass
    spec = tmp_path / "s.yaml"
    spec.write_text(SYN)
    res = symsweep("run", str(spec), "--results", str(tiny_disk), "--executor", "inline")
    assert res.returncode == 1 and "no space left on" in res.stderr and "Traceback" not in res.stderr
    assert not (tiny_disk / "syn" / ".lock").exists()
    filler.unlink()
    res = symsweep("run", str(spec), "--results", str(tiny_disk), "--executor", "inline")
    assert res.returncode == 0, res.stderr


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("overrides, message", [
    (["name=.."], "name '..' is not allowed"),
    (["name=."], "name '.' is not allowed"),
    (["name=" + "a" * 300], "is not allowed: a sweep name is one folder name of at most 100"),
    (["seeds=1000000000"], "2 grid points x 1000000000 seeds = 2000000000 runs, more than max_runs = 1000000"),
    (["resources.cpus=.nan"], "resources.cpus: expected a finite number, got nan"),
    (["resources.cpus=.inf"], "resources.cpus: expected a finite number, got inf"),
    (["sleep_s=.nan"], "fixed.sleep_s: expected a finite number, got nan"),
    (["lr=.nan"], "fixed.lr: expected a finite number, got nan"),
    (["seeds=[-1, 3]"], "seeds: -1 is out of range"),
    (["resources.cpus=64"], "resources.cpus=64 per trial, but the embedded Ray has"),
    (["resources.gpus=1"], "no Ray node can hold one trial (resources.cpus=1, resources.gpus=1)"),
])
def test_bad_values_stop_before_anything_is_written(tmp_path, overrides, message):
    spec = tmp_path / "s.yaml"
    spec.write_text(SYN)
    start = time.monotonic()
    args = [a for o in overrides for a in ("--set", o)]
    res = symsweep("run", str(spec), *args, "--results", str(tmp_path / "res"), "--num-cpus", "2")
    err = one_line(res)
    assert message in err, err
    assert not (tmp_path / "res").exists() and _files(tmp_path) == {"s.yaml"}
    if "seeds=1000000000" in overrides:
        assert time.monotonic() - start < 10  # refused at once (most of it is the interpreter start)


def test_the_same_command_twice_is_the_same_spec(tmp_path):
    from symsweep.spec import canonical_json as _canonical
    assert _canonical({"lr": math.nan}) == _canonical({"lr": math.nan})  # NaN == NaN as specs
    spec = tmp_path / "s.yaml"
    spec.write_text(SYN)
    for _ in range(2):
        res = symsweep("run", str(spec), "--set", "lr=0.05", "--set", "fail_seeds=[1]", "--results",
                       str(tmp_path / "res"), "--executor", "inline")
        assert res.returncode == 1, res.stderr  # seed 1 fails on purpose
        assert "different spec" not in res.stderr


def test_closing_the_pipe_early_is_normal_use(sweep):
    res = subprocess.run(f"{sys.executable} -m symsweep.cli status {sweep} --slowest 50 | head -1",
                         shell=True, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.stdout.startswith("sweep 'syn'") and res.stderr == "", res.stderr


def test_malformed_yaml_is_one_line_with_line_and_column(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("name: x\ntask: synthetic\naxes: {steps: [1, 2}\n")
    err = one_line(symsweep("run", str(spec), "--results", str(tmp_path / "res")))
    assert err.startswith(f"symsweep: error: {spec}:3:") and "not valid YAML" in err


# ----------------------------------------------------------------------------- read-only queries


@pytest.mark.parametrize("sql", [
    "COPY (SELECT 1) TO '{tmp}/x.csv'",
    "COPY (SELECT * FROM runs LIMIT 1) TO '{sweep}/runs/zzzz.parquet' (FORMAT parquet)",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM read_parquet('{sweep}/runs/*.parquet')",
    "ATTACH '{tmp}/x.db' AS other",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "SELECT 1; COPY (SELECT 1) TO '{tmp}/y.csv'",
])
def test_queries_read_the_tables_and_nothing_else(sweep, tmp_path, sql):
    before = _files(tmp_path)
    res = symsweep("query", sql.format(tmp=tmp_path, sweep=sweep), "--results", str(sweep))
    err = one_line(res)
    assert "queries may read the sweep tables only" in err or "locked" in err, err
    assert _files(tmp_path) == before


def test_several_statements_run_in_order_and_print_each_result(sweep):
    res = symsweep("query", "CREATE TEMP VIEW done AS SELECT * FROM runs WHERE status = 'completed'; "
                   "SELECT count(*) AS n FROM done; SELECT max(seed) AS top FROM done", "--results", str(sweep))
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["n", "6", "top", "2"]


# ----------------------------------------------------------------------------- joining a cluster


def test_an_unreachable_cluster_address_is_one_line_without_a_hang(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(SYN)
    start = time.monotonic()
    err = one_line(symsweep("run", str(spec), "--results", str(tmp_path / "res"),
                            "--address", f"127.0.0.1:{free_port()}"))
    assert "cannot reach the Ray cluster at 127.0.0.1:" in err and "refused" in err.lower()
    assert time.monotonic() - start < 30
    assert not (tmp_path / "res").exists()


def test_a_port_that_is_not_ray_is_one_line_without_a_hang(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(SYN)
    server = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port := free_port())],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        start = time.monotonic()
        res = symsweep("run", str(spec), "--results", str(tmp_path / "res"), "--address", f"127.0.0.1:{port}",
                       timeout=240)
        err = one_line(res)
        assert "cannot join the Ray cluster at 127.0.0.1:" in err
        assert time.monotonic() - start < 180
        assert not (tmp_path / "res").exists()
    finally:
        server.kill()
        server.wait()


@pytest.mark.parametrize("args, message", [
    (["--num-cpus", "0"], "--num-cpus: expected a whole number >= 1, got 0"),
    (["--max-concurrent", "many"], "--max-concurrent: expected a whole number >= 1, got 'many'"),
    (["--data-root", "/no/such/folder"], "--data-root '/no/such/folder' is not a folder"),
])
def test_bad_command_line_options_stop_before_anything_is_written(tmp_path, args, message):
    spec = tmp_path / "s.yaml"
    spec.write_text(SYN)
    res = symsweep("run", str(spec), "--results", str(tmp_path / "res"), "--executor", "inline", *args)
    assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert not (tmp_path / "res").exists()


# ----------------------------------------------------------------------------- hostile YAML


def _laughs(indent: str = "") -> str:
    """A "billion laughs": ten anchors, each a list of nine aliases of the one before (9^10 values)."""
    lines = [f'{indent}a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"{indent}a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


def _refused(tmp_path: Path, text: str, *args: str) -> str:
    """Run a spec that must be refused, in its own process with a coarse timeout (a regression
    hangs for minutes; this guard fails it instead), and return the one line it printed."""
    spec = tmp_path / "s.yaml"
    spec.write_text(text)
    res = symsweep("run", str(spec), *args, "--results", str(tmp_path / "res"), "--executor", "inline",
                   isolated=True, timeout=60)
    err = one_line(res)
    assert not (tmp_path / "res").exists()
    return err


@pytest.mark.parametrize("where", ["description", "smoke", "unknown"])
def test_a_billion_laughs_spec_is_refused_in_one_line(tmp_path, where):
    text = SYN + (f"{where}:\n" + _laughs("  ") if where != "unknown" else _laughs())
    err = _refused(tmp_path, text)
    assert "aliases" in err and "at most 1,000,000" in err, err


def test_a_billion_laughs_override_is_refused_in_one_line(tmp_path):
    items = ["&a0 [" + ", ".join(["lol"] * 9) + "]"]
    items += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    err = _refused(tmp_path, SYN, "--set", f"description=[{', '.join(items)}]")
    assert "--set" in err and "aliases" in err, err


def test_a_recursive_alias_is_refused_in_one_line(tmp_path):
    err = _refused(tmp_path, SYN + "description: &r [*r]\n")
    assert f"{tmp_path / 's.yaml'}:8:14: " in err and "contains an alias of itself" in err, err


def test_deep_nesting_is_refused_in_one_line(tmp_path):
    for depth in (100, 50_000):  # under and over libyaml's own limit of 1000
        err = _refused(tmp_path, SYN + "description: " + "[" * depth + "]" * depth + "\n")
        assert "nested more than 64 levels deep" in err, err


@pytest.mark.parametrize("text, line, key", [
    ("name: syn\n" + SYN, 3, "name"),
    (SYN.replace("fixed: {sleep_s: 0.0}", "fixed:\n  sleep_s: 0.0\n  lr: 0.1\n  sleep_s: 0.5"), 7, "sleep_s"),
    (SYN + "resources: {cpus: 1, cpus: 2}\n", 8, "cpus"),
])
def test_a_duplicate_key_is_refused_naming_its_line(tmp_path, text, line, key):
    err = _refused(tmp_path, text)
    assert f"s.yaml:{line}:" in err and f"duplicate key {key!r}" in err, err


def test_a_huge_spec_file_is_refused_before_it_is_parsed(tmp_path):
    seeds = ", ".join(map(str, range(400_000)))  # ~3 MB on one line
    err = _refused(tmp_path, SYN.replace("seeds: 3", f"seeds: [{seeds}]"))
    assert "at most 1,000,000 bytes" in err, err


@pytest.mark.parametrize("value, message", [
    ("99999999999999999999999", "fixed.steps = 99999999999999999999999 is out of range: steps must be >= 1 "
                                "and <= 10,000,000 (task 'synthetic')"),
    ("[5, 100000000]", "axes.steps[1] = 100000000 is out of range: steps must be >= 1 and <= 10,000,000"),
    ("1" + "0" * 5000, "integer of 5001 digits"),
])
def test_a_budget_nobody_can_mean_is_refused_in_one_line(tmp_path, value, message):
    err = _refused(tmp_path, SYN, "--set", f"steps={value}")
    assert message in err, err


def test_an_int_that_no_ledger_column_holds_is_refused(tmp_path):
    err = _refused(tmp_path, SYN, "--set", "fail_seeds=[2, 99999999999999999999999]")  # a field with no range
    assert "fixed.fail_seeds[1]: 99999999999999999999999 does not fit a 64-bit int" in err, err


def test_a_changed_seed_list_is_summarized_not_printed_whole(sweep):
    seeds = "[" + ", ".join(map(str, range(1, 100_001))) + "]"
    (sweep.parent.parent / "syn.yaml").write_text(SYN.replace("seeds: 3", f"seeds: {seeds}"))
    res = symsweep("run", str(sweep.parent.parent / "syn.yaml"), "--results", str(sweep.parent),
                   "--executor", "inline")
    err = one_line(res)
    assert "was started with a different spec (seeds: [0, 1, 2] -> list of 100000 items (1, 2, 3, ..., 100000))" \
        in err, err
    assert len(err) < 1000, len(err)


# ----------------------------------------------------------------------------- bad locations


def _no_folder_is_made(tmp_path: Path, before: set[str]) -> None:
    assert _files(tmp_path) == before, _files(tmp_path) ^ before


@pytest.mark.parametrize("results, message", [
    ("{tmp}/afile", "{tmp}/afile is a file, not a folder"),
    ("{tmp}/afile/sub", "{tmp}/afile is a file, not a folder"),
    ("/dev/null", "/dev/null is not a folder"),
    ("/proc", "cannot create the sweep folder in /proc"),
    ("/proc/self", "cannot create the sweep folder in /proc/self"),
])
def test_run_into_a_bad_results_location_is_exit_2_in_one_line(tmp_path, results, message):
    (tmp_path / "afile").write_text("not a folder")
    (tmp_path / "s.yaml").write_text(SYN)
    before = _files(tmp_path)
    err = one_line(symsweep("run", str(tmp_path / "s.yaml"), "--results", results.format(tmp=tmp_path),
                            "--executor", "inline"))
    assert f"--results {results.format(tmp=tmp_path)}: " in err and message.format(tmp=tmp_path) in err, err
    _no_folder_is_made(tmp_path, before)


@pytest.fixture
def read_only_mount(tmp_path):
    yield from _tmpfs(tmp_path / "ro", "ro,size=1m", "a read-only tmpfs")


def test_run_into_a_read_only_mount_is_exit_2_in_one_line(read_only_mount, tmp_path):
    (tmp_path / "s.yaml").write_text(SYN)
    for results in (read_only_mount, read_only_mount / "deeper"):
        err = one_line(symsweep("run", str(tmp_path / "s.yaml"), "--results", str(results), "--executor", "inline"))
        assert f"cannot create the sweep folder in {read_only_mount}" in err and "read-only" in err, err
    assert list(read_only_mount.iterdir()) == []


def test_run_into_a_read_only_folder_is_exit_2_in_one_line(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes into a read-only folder: nothing to refuse (see the read-only mount test)")
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o555)
    (tmp_path / "s.yaml").write_text(SYN)
    err = one_line(symsweep("run", str(tmp_path / "s.yaml"), "--results", str(folder), "--executor", "inline"))
    assert f"cannot create the sweep folder in {folder}" in err and "permission denied" in err.lower(), err
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("command", ["status", "resume", "aggregate", "compact", "report"])
@pytest.mark.parametrize("path, message", [
    ("{tmp}/nothing", "{tmp}/nothing is not a sweep folder: it does not exist"),
    ("{tmp}", "{tmp} is not a sweep folder (no spec.yaml)"),
    ("{tmp}/afile", "{tmp}/afile is a file, not a sweep folder"),
    ("/dev/null", "/dev/null is not a sweep folder"),
])
def test_a_path_that_is_no_sweep_is_exit_2_in_one_line(tmp_path, command, path, message):
    (tmp_path / "afile").write_text("not a sweep")
    before = _files(tmp_path)
    err = one_line(symsweep(command, path.format(tmp=tmp_path), *(["--executor", "inline"] if command == "resume"
                                                                   else [])))
    assert message.format(tmp=tmp_path) in err, err
    _no_folder_is_made(tmp_path, before)


@pytest.mark.parametrize("query, message", [
    ("connect_timeout=abc", "S3 option connect_timeout='abc' in the store URI: expected a number of seconds > 0"),
    ("request_timeout=-1", "S3 option request_timeout='-1' in the store URI: expected a number of seconds > 0"),
    ("connect_timeout=nan", "S3 option connect_timeout='nan' in the store URI: expected a number of seconds > 0"),
    ("secret_key=s3cr3t", "S3 option secret_key needs access_key too"),
    ("access_key=AKIA", "S3 option access_key needs secret_key too"),
    ("access_key=AKIA&secret_key=s3cr3t&session_token=tok&session_token=tok2", "S3 option session_token is given twice"),
    ("allow_bucket_creation=maybe", "S3 option allow_bucket_creation='maybe' in the store URI: expected true or false"),
    ("scheme=ftp", "S3 option scheme='ftp' in the store URI: expected http or https"),
    ("region=", "S3 option region is empty"),
])
def test_bad_s3_uri_options_are_exit_2_in_one_line_before_connecting(tmp_path, query, message):
    (tmp_path / "s.yaml").write_text(SYN)
    uri = f"s3://no-such-bucket/results?endpoint_override=127.0.0.1:9&scheme=http&{query}".replace(
        "scheme=http&scheme=ftp", "scheme=ftp")
    for args in (["run", str(tmp_path / "s.yaml"), "--results", uri, "--executor", "inline"], ["status", uri]):
        start = time.monotonic()
        err = one_line(symsweep(*args))
        assert message in err, err
        assert "s3cr3t" not in err and "tok2" not in err
        assert time.monotonic() - start < 30  # no connection tried: nothing listens on port 9


def test_an_s3_prefix_that_is_no_sweep_is_exit_2_in_one_line(s3):
    for command in ("status", "resume"):
        err = one_line(symsweep(command, s3.uri("no-sweep-here"), *(["--executor", "inline"] if command == "resume"
                                                                      else [])))
        assert f"{s3.uri('no-sweep-here')} is not a sweep folder (no spec.yaml)" in err, err
    assert s3.keys("no-sweep-here") == []
