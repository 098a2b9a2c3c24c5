"""Batch scoring when things go wrong around it: two runs into one output, a profiles file edited
between a crash and the resume, a damaged checkpoint, a publish that fails half-way, the hint for each
kind of write failure, a model that cannot be loaded, a store that goes away, a killed parent of
worker processes and Spark's console noise. Real files, processes, locks and databases throughout."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from batch import BatchOptions, OutputBusyError, OutputPaths, score_manifest
from tests.conftest import REPO, TinyModel, TinyRegistry
from tests.factories import make_declarations

MODEL_URI = "models:/tiny/1"


@pytest.fixture(scope="module")
def manifests(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two manifests of other declarations (ids of "big" and "other" never meet)."""
    folder = tmp_path_factory.mktemp("manifests")
    big = make_declarations(np.random.default_rng(11), 600, start="2023-06-01", days=30)
    other = make_declarations(np.random.default_rng(12), 200, start="2023-06-01", days=30, prefix="O")
    big.to_parquet(folder / "big.parquet", index=False, row_group_size=100)
    other.to_parquet(folder / "other.parquet", index=False)
    return {"big": folder / "big.parquet", "other": folder / "other.parquet"}


def _options(**kw: Any) -> BatchOptions:
    return BatchOptions(**{"capacity": "10%", "random_share": 0.2, "seed": 1, "chunk_rows": 100,
                           "pipelined": False, **kw})


def _score(tiny_model: TinyModel, manifest: Path, out: Path, **kw: Any) -> Any:
    progress = kw.pop("progress", None)
    profiles = kw.pop("profiles", None)
    return score_manifest(manifest, out, MODEL_URI, _options(**kw), load_model=TinyRegistry("tiny", tiny_model.model).load,
                          progress=progress, profiles=profiles)


def _cli(args: list[str]) -> Any:
    from riskprof.cli import app

    return CliRunner().invoke(app, args)


def _said(text: str) -> str:
    return " ".join(text.split())


# ---- 1. one run at a time per output ------------------------------------------------------------

class _Paused:
    """A progress hook that holds the run after its first chunk until released."""

    def __init__(self) -> None:
        self.reached, self.release = threading.Event(), threading.Event()

    def start(self, total: int | None, completed: int) -> None: ...

    def advance(self, rows: int) -> None:
        self.reached.set()
        assert self.release.wait(60)

    def stop(self) -> None: ...


@pytest.fixture
def lock_holder() -> Iterator[Callable[[Path], subprocess.Popen]]:
    """Another process holding ``flock`` on a file (as another run holds ``<out>.lock``), its pid written
    in it; killed at the end."""
    procs: list[subprocess.Popen] = []
    code = ("import fcntl, os, sys\n"
            "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "os.ftruncate(fd, 0); os.write(fd, str(os.getpid()).encode())\n"
            "print('locked', flush=True)\n"
            "sys.stdin.read()\n")

    def hold(path: Path) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True)
        procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        return proc

    yield hold
    for proc in procs:
        proc.kill()
        proc.wait(10)


def test_a_second_run_into_the_same_output_stops_at_once_and_the_first_completes(
        tiny_model: TinyModel, manifests: dict[str, Path], tmp_path: Path) -> None:
    """The repro: a run of another manifest started into the output of a run under way resumed the
    first's parts as its own (600 + 200 rows "scored", labelled with the second manifest), and the first
    then failed on files removed under it. Now the second stops before touching anything."""
    clean = tmp_path / "clean.parquet"
    _score(tiny_model, manifests["big"], clean)
    out = tmp_path / "o" / "c.parquet"
    out.parent.mkdir()
    paused = _Paused()
    first: dict[str, Any] = {}

    def run_first() -> None:
        try:
            first["summary"] = _score(tiny_model, manifests["big"], out, progress=paused)
        except BaseException as exc:  # reported by the assertion below
            first["error"] = exc

    thread = threading.Thread(target=run_first)
    thread.start()
    try:
        assert paused.reached.wait(60), first
        ckpt = OutputPaths(out).checkpoint
        parts_before = sorted(p.name for p in ckpt.iterdir())
        for manifest in (manifests["other"], manifests["big"]):  # another manifest, and the same command
            with pytest.raises(OutputBusyError, match=f"another riskprof score \\(pid {os.getpid()}\\) is writing "
                                                      f".*c.parquet: wait for it to finish, or choose another --out"):
                _score(tiny_model, manifest, out)
        assert sorted(p.name for p in ckpt.iterdir()) == parts_before  # the second touched nothing
        assert not out.exists()
    finally:
        paused.release.set()
        thread.join(120)
    assert "error" not in first, first.get("error")
    assert first["summary"].counts.rows_scored == 600
    assert out.read_bytes() == clean.read_bytes()
    assert not OutputPaths(out).checkpoint.exists()
    assert not (out.parent / "c.parquet.lock").exists()  # removed on release


def test_the_cli_refuses_with_exit_2_naming_the_holder_and_a_killed_holder_blocks_nothing(
        tiny_model: TinyModel, manifests: dict[str, Path], tmp_path: Path,
        lock_holder: Callable[[Path], subprocess.Popen]) -> None:
    out = tmp_path / "s.parquet"
    holder = lock_holder(tmp_path / "s.parquet.lock")
    res = _cli(["score", "--manifest", str(manifests["other"]), "--out", str(out), "--no-profiles"])
    said = _said(res.output)
    assert res.exit_code == 2, said
    assert f"error: another riskprof score (pid {holder.pid}) is writing {out}" in said
    assert "choose another --out" in said and "Traceback" not in said
    with pytest.raises(OutputBusyError):  # the library call too
        _score(tiny_model, manifests["other"], out)
    assert not out.exists() and not OutputPaths(out).checkpoint.exists()

    holder.send_signal(signal.SIGKILL)  # a run killed: its lock file stays, the kernel drops its lock
    holder.wait(10)
    assert (tmp_path / "s.parquet.lock").exists()
    summary = _score(tiny_model, manifests["other"], out)
    assert summary.counts.rows_scored == 200 and out.exists()


# ---- 5. the hint fits the failure -----------------------------------------------------------------

class _AfterFirstChunk:
    """A progress hook that does ``act`` once the first chunk is saved (the next write then fails)."""

    def __init__(self, act: Callable[[], None]) -> None:
        self.act, self.done = act, False

    def start(self, total: int | None, completed: int) -> None: ...

    def advance(self, rows: int) -> None:
        if not self.done:
            self.done = True
            self.act()

    def stop(self) -> None: ...


def _chattr(flag: str, path: Path) -> None:
    res = subprocess.run(["chattr", flag, str(path)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"chattr {flag} is not possible here (needs root on ext4/xfs/tmpfs): {res.stderr.strip()}")


def _read_only(folder: Path) -> None:
    """``folder`` turned into a read-only mount of itself (writes in it fail with EROFS, as on a file
    system remounted read-only; the lock file beside it stays writable, so nothing else is busy)."""
    for cmd in (["mount", "--bind", str(folder), str(folder)], ["mount", "-o", "remount,bind,ro", str(folder)]):
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            pytest.skip(f"cannot mount (needs root with CAP_SYS_ADMIN): {res.stderr.strip()}")


@pytest.mark.parametrize("cause", [pytest.param("read-only", marks=pytest.mark.slow),
                                   pytest.param("immutable", marks=pytest.mark.slow), "removed"])
def test_a_failed_write_gives_the_remedy_of_its_cause_not_free_space(
        tiny_model: TinyModel, manifests: dict[str, Path], tmp_path: Path, cause: str) -> None:
    """Every failed write said "free space and run the same command again": also for a read-only file
    system (EROFS), a protected folder (EPERM) and a checkpoint removed under the run (ENOENT)."""
    from batch import BatchWriteError

    out = tmp_path / "s.parquet"
    ckpt = OutputPaths(out).checkpoint
    acts = {"read-only": lambda: _read_only(ckpt),
            "immutable": lambda: _chattr("+i", ckpt),
            "removed": lambda: __import__("shutil").rmtree(ckpt)}
    expected = {"read-only": "the file system is read-only", "immutable": "permission denied",
                "removed": "a file or folder disappeared while the run wrote"}
    remedy = {"read-only": "make it writable", "immutable": "chattr -i",
              "removed": "check that nothing else moves or removes the output's folder"}
    try:
        with pytest.raises(BatchWriteError) as err:
            _score(tiny_model, manifests["big"], out, progress=_AfterFirstChunk(acts[cause]))
    finally:
        if cause == "immutable":
            subprocess.run(["chattr", "-i", str(ckpt)], check=False)
        if cause == "read-only":
            subprocess.run(["umount", str(ckpt)], check=False)
    said = str(err.value)
    assert expected[cause] in said and remedy[cause].lower() in said.lower(), said
    assert "free space" not in said.lower() and "disk is full" not in said
    assert "Nothing was published" in said and not out.exists()
    if cause != "removed":  # the chunk scored before the failure is kept, and said to be
        assert "The 1 chunk(s) scored so far are kept" in said and "to resume" in said
        summary = _score(tiny_model, manifests["big"], out)  # the cause removed: the run resumes
        assert summary.chunks_resumed == 1 and summary.counts.rows_scored == 600


# ---- 4. a publish is all or nothing --------------------------------------------------------------

@pytest.mark.slow  # two runs and a resume each: the quick tier keeps its 30 s
@pytest.mark.parametrize("protected", ["s.parquet", "s.rejects.csv"])
def test_a_publish_failing_half_way_puts_back_what_it_replaced(tiny_model: TinyModel, manifests: dict[str, Path],
                                                               tmp_path: Path, protected: str) -> None:
    """``chattr +i`` on a file of an earlier output, then a run into it: the new .meta.json and rejects
    stood beside the earlier scores, and the run said "Nothing was published". Now the files replaced
    before the failure are put back (a new one, the CSV copy, removed), and the message says so."""
    clean = tmp_path / "clean" / "s.parquet"
    clean.parent.mkdir()
    _score(tiny_model, manifests["big"], clean, write_csv=True)
    out = tmp_path / "run" / "s.parquet"
    out.parent.mkdir()
    _score(tiny_model, manifests["other"], out)  # the earlier run: no CSV copy
    paths = OutputPaths(out)
    earlier = {p.name: p.read_bytes() for p in (out, paths.rejects, paths.meta)}
    _chattr("+i", out.parent / protected)
    try:
        from batch import BatchWriteError

        with pytest.raises(BatchWriteError) as err:
            _score(tiny_model, manifests["big"], out, write_csv=True)
        now = {p.name: p.read_bytes() for p in (out, paths.rejects, paths.meta)}
        assert now == earlier  # every file as the earlier run left it
        assert not paths.csv.exists()  # new to the folder: removed again
        said = str(err.value)
        assert f"Nothing was published: {out.parent / protected} could not be replaced" in said, said
        n_before = {"s.parquet": 3, "s.rejects.csv": 1}[protected]  # csv, rejects, meta | csv
        assert f"the {n_before} file(s) replaced before it were put back as they were" in said, said
        assert "permission denied" in said and "chattr -i" in said and "to resume" in said
        assert not list(out.parent.glob(".*")) and not list(paths.checkpoint.glob(".*"))  # no temporaries left
    finally:
        subprocess.run(["chattr", "-i", str(out.parent / protected)], check=False)
    summary = _score(tiny_model, manifests["big"], out, write_csv=True)  # the protection lifted: resumes
    assert summary.chunks_resumed == 6
    for mine, theirs in ((out, clean), (paths.rejects, OutputPaths(clean).rejects)):
        assert mine.read_bytes() == theirs.read_bytes()
    assert paths.csv.read_bytes().replace(b"/run/", b"/x/") == OutputPaths(clean).csv.read_bytes().replace(b"/clean/", b"/x/")


# ---- 3. a damaged checkpoint is scored again, never a traceback ------------------------------------

class _StopAfter:
    """A progress hook that stops the run (as a crash would) after ``n`` chunks; or, with ``then``, lets
    pass 1 finish and does ``then`` between the passes."""

    def __init__(self, n: int | None = None, then: Callable[[], None] | None = None) -> None:
        self.left, self.then = n, then

    def start(self, total: int | None, completed: int) -> None: ...

    def advance(self, rows: int) -> None:
        if self.left is not None:
            self.left -= 1
            if self.left <= 0:
                raise KeyboardInterrupt("stopped")

    def stop(self) -> None:
        if self.then is not None:
            then, self.then = self.then, None
            then()


def _truncate(path: Path) -> None:
    os.truncate(path, 1000)


def _garble(path: Path) -> None:
    """The file's middle overwritten (its footer intact): opens, but its record batch cannot be read."""
    data = bytearray(path.read_bytes())
    data[8:len(data) // 2] = b"\xff" * (len(data) // 2 - 8)
    path.write_bytes(bytes(data))


DAMAGE = {"truncated part": ("part-00000-000002.arrow", _truncate),
          "garbage part": ("part-00000-000001.arrow", lambda p: p.write_bytes(b"ARROW1\0\0 and then nothing")),
          "truncated rejects": ("rejects-00000-000002.arrow", _truncate),
          "missing rejects": ("rejects-00000-000000.arrow", os.remove),
          "garbage rejects": ("rejects-00000-000001.arrow", lambda p: p.write_bytes(b"not arrow at all")),
          "garbled part": ("part-00000-000000.arrow", _garble)}


@pytest.fixture(scope="module")
def clean_run(tiny_model: TinyModel, manifests: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clean") / "s.parquet"
    _score(tiny_model, manifests["big"], out)
    return out


def _same_as(out: Path, clean: Path) -> None:
    assert out.read_bytes() == clean.read_bytes()
    assert OutputPaths(out).rejects.read_bytes() == OutputPaths(clean).rejects.read_bytes()


# one case in the quick tier (a part cut short while pass 1 ran); the other eleven in the slow tier, which CI runs (`make test-fast` stays under its 30 s)
_QUICK = {("during pass 1", "truncated part")}


@pytest.mark.parametrize("when,damage", [
    pytest.param(w, d, marks=() if (w, d) in _QUICK else pytest.mark.slow)
    for w in ("during pass 1", "after pass 1") for d in sorted(DAMAGE)])
def test_a_damaged_checkpoint_file_is_scored_again_and_the_output_equals_a_clean_run(
        tiny_model: TinyModel, manifests: dict[str, Path], clean_run: Path, tmp_path: Path, damage: str,
        when: str) -> None:
    """A truncated, garbled or missing part or rejects file made every resume fail (a pyarrow traceback,
    or "writing failed ... free space"). Now that chunk is scored again, with a note."""
    name, act = DAMAGE[damage]
    out = tmp_path / "s.parquet"
    ckpt = OutputPaths(out).checkpoint
    if when == "during pass 1":  # a crash after 4 of the 6 chunks, then the damage, then the resume
        with pytest.raises(KeyboardInterrupt):
            _score(tiny_model, manifests["big"], out, progress=_StopAfter(4))
        act(ckpt / name)
        summary = _score(tiny_model, manifests["big"], out)
    else:  # damaged between the passes of one run: found when pass 2 reads it (or by the resume)
        summary = _score(tiny_model, manifests["big"], out, progress=_StopAfter(then=lambda: act(ckpt / name)))
    _same_as(out, clean_run)
    assert summary.counts.rows_scored == 600
    said = " ".join(summary.notes)
    assert f"checkpoint {ckpt}: {name} cannot be read" in said and "that chunk is scored again" in said, said
    assert not ckpt.exists()


@pytest.mark.slow  # a run and a resume: the quick tier keeps its 30 s
def test_a_checkpoint_whose_pinned_profiles_cannot_be_read_is_discarded_with_a_note(
        tiny_model: TinyModel, manifests: dict[str, Path], clean_run: Path, tmp_path: Path) -> None:
    """profiles.json cut short: the profiles the run pinned are unknown, so no chunk can be trusted to
    match them; the checkpoint is discarded with a note and the run starts over (a traceback before)."""
    from batch import PinnedRules

    out = tmp_path / "s.parquet"
    ckpt = OutputPaths(out).checkpoint
    pins = PinnedRules.of([], [], {}, "file /nowhere.yaml")  # a set that cannot fire: output as without
    with pytest.raises(KeyboardInterrupt):
        _score(tiny_model, manifests["big"], out, progress=_StopAfter(3), profiles=pins)
    (ckpt / "profiles.json").write_text('{"source": "file /nowhere.yaml", "profi')  # cut short
    summary = _score(tiny_model, manifests["big"], out, profiles=pins)
    assert summary.chunks_resumed == 0
    assert any(f"discarded checkpoint {ckpt}: its profiles.json cannot be read" in n for n in summary.notes)
    _same_as(out, clean_run)


# ---- 2. a profiles file edited between a crash and the resume ---------------------------------------

TOOLS = {"id": "P-TOOLS", "name": "hand tools", "criterion": "hand tools (HS 8206)",
         "conditions": [{"field": "hs_code", "op": "prefix", "values": ["8206"]}],
         "action": {"lane": "red", "select": True, "alert": True}, "valid_from": "2023-01-01",
         "status": "active", "owner": "analyst1"}


def _profiles_file(path: Path, hs_prefix: str) -> Any:
    """A profiles YAML as ``riskprof profiles export`` writes it, read as ``riskprof score --profiles`` does."""
    from profiles import Profile, dump_profiles
    from riskprof.cli_score import _profiles_from_file

    rule = {**TOOLS, "conditions": [{"field": "hs_code", "op": "prefix", "values": [hs_prefix]}]}
    path.write_text(dump_profiles([Profile.model_validate(rule)]), encoding="utf-8")
    return _profiles_from_file(path)


@pytest.mark.slow  # ~1 s: the quick tier keeps its 30 s
def test_a_profiles_file_edited_before_the_resume_restarts_the_run_and_its_digest_is_recorded(
        tiny_model: TinyModel, manifests: dict[str, Path], tmp_path: Path) -> None:
    """The checkpoint pinned the file's profile ids and versions only: a rule edited in the file under the
    same id and version was not seen, and the resumed run applied the old rule with no note. Now the
    file's SHA-256 is part of the run's fingerprint: the checkpoint is discarded with a note (as for a
    changed manifest) and the new rules apply to every chunk; .meta.json records the digest."""
    import hashlib
    import json

    rules = tmp_path / "profiles.yaml"
    old = _profiles_file(rules, "84")
    clean_old = tmp_path / "old" / "s.parquet"
    _score(tiny_model, manifests["big"], clean_old, profiles=old)
    new = _profiles_file(rules, "85")  # the same profile id and version 1, another rule
    clean_new = tmp_path / "new" / "s.parquet"
    _score(tiny_model, manifests["big"], clean_new, profiles=new)
    assert clean_new.read_bytes() != clean_old.read_bytes()  # the edit matters: the test can fail

    out = tmp_path / "run" / "s.parquet"
    with pytest.raises(KeyboardInterrupt):
        _score(tiny_model, manifests["big"], out, progress=_StopAfter(3), profiles=_profiles_file(rules, "84"))
    edited = _profiles_file(rules, "85")  # edited while the run was down
    summary = _score(tiny_model, manifests["big"], out, profiles=edited)
    assert summary.chunks_resumed == 0
    assert any("discarded checkpoint" in n and "(changed: the content of the profiles file)" in n
               for n in summary.notes), summary.notes
    assert out.read_bytes() == clean_new.read_bytes()
    meta = json.loads(OutputPaths(out).meta.read_text())
    assert meta["profiles"]["sha256"] == hashlib.sha256(rules.read_bytes()).hexdigest()
    assert meta["profiles"]["source"] == f"file {rules.resolve()}"

    # the same file again: resumed as before
    with pytest.raises(KeyboardInterrupt):
        _score(tiny_model, manifests["big"], out.with_name("t.parquet"), progress=_StopAfter(3), profiles=edited)
    again = _score(tiny_model, manifests["big"], out.with_name("t.parquet"), profiles=_profiles_file(rules, "85"))
    assert again.chunks_resumed == 3 and out.with_name("t.parquet").read_bytes() == clean_new.read_bytes()


# ---- 8. workers end with their parent ----------------------------------------------------------------

_DRIVER = """
import sys
import numpy as np
from batch import BatchOptions, score_manifest
from tests.conftest import TinyRegistry, build_tiny_model
from tests.factories import make_declarations

manifest, out = sys.argv[1], sys.argv[2]
make_declarations(np.random.default_rng(3), 40_000, start="2023-06-01", days=30).to_parquet(manifest, index=False)
model = build_tiny_model().model
score_manifest(manifest, out, "models:/tiny/1", BatchOptions(chunk_rows=500, workers=2, reasons_for="all"),
               load_model=TinyRegistry("tiny", model).load)
"""


def _descendants(pid: int) -> set[int]:
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            with contextlib.suppress(OSError):
                kids = {int(k) for k in (task / "children").read_text().split()}
                todo += list(kids - found)
                found |= kids
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has exited (it only waits to be reaped)


@pytest.mark.slow  # three processes started (~6 s)
@pytest.mark.integration
def test_workers_and_the_resource_tracker_end_when_the_parent_is_killed(tmp_path: Path) -> None:
    """``score --workers 2`` killed with SIGKILL left both spawn workers (~300 MB each) and the resource
    tracker alive forever, blocked reading a pipe. Now they end within seconds."""
    if not Path("/proc/self/task").exists():
        pytest.skip("needs Linux /proc to find the worker processes")
    out = tmp_path / "s.parquet"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}
    driver = subprocess.Popen([sys.executable, "-c", _DRIVER, str(tmp_path / "m.parquet"), str(out)], cwd=REPO,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    children: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while len(list(OutputPaths(out).checkpoint.glob("part-*.arrow"))) < 2:  # both workers at work
            assert driver.poll() is None, driver.communicate()[1]
            assert time.monotonic() < deadline, "no parts after 120 s"
            time.sleep(0.05)
        children = _descendants(driver.pid)
        assert len(children) >= 3, children  # two workers and the resource tracker
        driver.send_signal(signal.SIGKILL)
        driver.wait(30)
        deadline = time.monotonic() + 30  # generous: the workers look for their parent every 0.25 s
        while any(_alive(p) for p in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [p for p in children if _alive(p)]
        assert not left, f"still running after their parent was killed: {left}"
    finally:  # nothing of the test outlives it, whatever failed
        for p in [driver.pid, *children, *(_descendants(driver.pid) if driver.poll() is None else ())]:
            if p == driver.pid or _alive(p):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p, signal.SIGKILL)
        driver.wait(30)


# ---- 7. the store goes away after the scores are published ----------------------------------------

def test_a_store_unreachable_after_publishing_exits_2_and_the_same_command_records_alerts_and_audit_once(
        trained_model: Any, pg: Any, tmp_path: Path) -> None:
    """PostgreSQL stopped while ``riskprof score`` runs with an active profile: the output was published,
    then a traceback (StoreUnavailable from create_alerts), exit 1, alerts and audit event missing. Now:
    exit 2 naming what was written and what was not, the checkpoint kept; the same command, once the
    database is back, publishes the same output from the checkpoint and records each alert and the
    audit event exactly once."""
    import pandas as pd
    import sqlalchemy as sa

    from profiles import Profile
    from serving import migrations
    from serving.profile_store import Actor, ProfileStore
    from serving.store import Store, audit_events, make_engine

    frame = pd.read_parquet(trained_model.data["declarations"]).sort_values("declaration_id").iloc[-4_000:]
    manifest = tmp_path / "manifest.parquet"
    frame.to_parquet(manifest, index=False)
    prefix = frame["hs_code"].astype(str).str[:2].value_counts().index[0]  # the commonest chapter: alerts for sure
    url = pg.url(pg.create_database())
    store = Store(make_engine(url))
    migrations.upgrade(store.engine)
    ProfileStore(store.engine, extra_columns={}).save([Profile.model_validate({
        "id": "P-1", "name": "chapter", "criterion": f"chapter {prefix}", "owner": "ana", "status": "active",
        "conditions": [{"field": "hs_code", "op": "prefix", "values": [prefix]}],
        "action": {"lane": "yellow", "alert": True}, "valid_from": "2000-01-01"})], [], Actor("ana", "cli"))
    store.dispose()

    out = tmp_path / "out" / "scores.parquet"
    out.parent.mkdir()
    ckpt = OutputPaths(out).checkpoint
    env = {**os.environ, "RISKPROF_DATABASE_URL": url,
           "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}
    cmd = [sys.executable, "-m", "riskprof.cli", "score", "--manifest", str(manifest), "--out", str(out),
           "--model", trained_model.uri, "--chunk-rows", "200"]
    run = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not list(ckpt.glob("part-*.arrow")):  # profiles pinned, scoring under way
            assert run.poll() is None, run.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        pg.stop()
        _, err = run.communicate(timeout=300)
    finally:
        if run.poll() is None:
            run.kill()
        with contextlib.suppress(RuntimeError):  # started again for the rest of the session, whatever failed
            pg.start()
    said = _said(err)
    assert run.returncode == 2, said
    assert "Traceback" not in said
    assert f"error: the scores were written at {out} (with scores.rejects.csv and scores.meta.json), but the " in said
    assert "alert(s) and the audit event were not recorded: the serving store cannot be reached" in said
    assert f"The checkpoint {ckpt} is kept" in said and "run the same command again" in said
    first = out.read_bytes()
    assert ckpt.exists() and not (out.parent / "scores.parquet.lock").exists()

    again = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    said = _said(again.stderr)
    assert again.returncode == 0, said
    assert "resumed from checkpoint" in said and "audit log: 4,000 item(s) recorded" in said
    assert out.read_bytes() == first and not ckpt.exists()
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            n_alerts = conn.execute(sa.text("SELECT count(*) FROM alerts")).scalar_one()
            n_events = conn.execute(sa.select(sa.func.count()).select_from(audit_events)).scalar_one()
    finally:
        engine.dispose()
    expected = int(pd.read_parquet(out)["rule_hits"].map(len).gt(0).sum())
    assert n_alerts == expected > 0 and f"alerts: {expected:,} raised (0 raised before)" in said
    assert n_events == 1


# ---- 9. Spark keeps the user's console for the error -------------------------------------------------

_SPARK_DRIVER = """
import sys
from batch import BatchOptions, score_manifest
from features.io import LoadError
from tests.conftest import TinyRegistry, build_tiny_model

try:
    score_manifest(sys.argv[1], sys.argv[2], "models:/tiny/1",
                   BatchOptions(chunk_rows=100, engine="spark", spark_master="local[2]"),
                   load_model=TinyRegistry("tiny", build_tiny_model().model).load)
except LoadError as exc:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(2)
"""


@pytest.mark.slow
@pytest.mark.integration
def test_spark_on_a_malformed_csv_prints_the_error_without_java_or_python_stack_traces(tmp_path: Path) -> None:
    """~76 lines of executor and task-manager stack traces came before the one clean error line."""
    frame = make_declarations(np.random.default_rng(3), 300, start="2023-06-01", days=30)
    lines = frame.to_csv(index=False).splitlines()
    lines[150] += ',"an unterminated quote'
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
           "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}
    res = subprocess.run([sys.executable, "-c", _SPARK_DRIVER, str(bad), str(tmp_path / "o.parquet")], cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 2, res.stderr
    assert "error: " in res.stderr and "is not a well-formed CSV" in res.stderr
    assert "\tat org.apache" not in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert "ERROR" not in res.stderr and "[Stage" not in res.stderr, res.stderr
    assert len(res.stderr.splitlines()) <= 15, res.stderr  # the JVM's start-up lines, then the error


@pytest.mark.parametrize("engine", [["--workers", "2"], ["--engine", "spark"]])
def test_two_real_score_commands_into_one_output_the_second_exits_2_at_once(trained_model: Any, tmp_path: Path,
                                                                            engine: list[str]) -> None:
    """The repro with real processes, with worker processes or Spark behind the first: the second
    command (another manifest) stops with exit 2 naming the first's pid; the first publishes its own rows."""
    import json

    import pandas as pd

    frame = pd.read_parquet(trained_model.data["declarations"]).sort_values("declaration_id")
    big, other = tmp_path / "big.parquet", tmp_path / "m2.parquet"
    frame.iloc[-8_000:].to_parquet(big, index=False, row_group_size=1_000)
    frame.iloc[:2_000].to_parquet(other, index=False)
    out = tmp_path / "o" / "c.parquet"
    out.parent.mkdir()
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
           "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}

    def command(manifest: Path) -> list[str]:
        return [sys.executable, "-m", "riskprof.cli", "score", "--manifest", str(manifest), "--out", str(out),
                "--model", trained_model.uri, "--chunk-rows", "500", "--no-profiles", *engine]

    first = subprocess.Popen(command(big), env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not (out.parent / "c.parquet.lock").exists():  # taken at the start, before the model is loaded
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        second = subprocess.run(command(other), env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
        _, err = first.communicate(timeout=600)
    finally:
        if first.poll() is None:
            first.kill()
    said = _said(second.stderr)
    assert second.returncode == 2, said
    assert f"error: another riskprof score (pid {first.pid}) is writing {out}" in said and "Traceback" not in said
    assert first.returncode == 0, err
    meta = json.loads(OutputPaths(out).meta.read_text())
    assert meta["summary"]["rows_scored"] == 8_000
    assert set(pd.read_parquet(out, columns=["source_file"])["source_file"]) == {str(big)}
