"""CPU threads on a shared machine (ablate/threads.py): the default count comes from the cores this
process may use (affinity, cgroup quota, a launcher's share), and ``import ablate`` makes OpenMP's
idle threads sleep instead of spin, before torch loads libgomp (checked in fresh interpreters)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ablate import threads as cpu
from ablate.errors import ConfigError
from tests.helpers import ROOT, TINY

CLEAN = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS", "ABLATE_THREADS")


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in CLEAN}
    return {**env, **extra}


# --- the default count ----------------------------------------------------------------------

def test_default_is_the_affinity_without_a_quota(monkeypatch):
    monkeypatch.setattr(cpu.os, "sched_getaffinity", lambda pid: {0, 2, 5})
    monkeypatch.setattr(cpu, "_cgroup_quota", lambda: None)
    assert cpu.usable_cores() == 3
    assert cpu.default_threads({}) == (3, "cores")


@pytest.mark.parametrize("quota,want", [(1.5, 1), (2.0, 2), (8.0, 3), (0.5, 1)])
def test_a_cgroup_quota_caps_the_affinity(monkeypatch, quota, want):
    monkeypatch.setattr(cpu.os, "sched_getaffinity", lambda pid: {0, 1, 2})
    monkeypatch.setattr(cpu, "_cgroup_quota", lambda: quota)
    assert cpu.default_threads({}) == (want, "cores")


def test_cgroup_quota_files_v2_and_v1(tmp_path):
    proc = tmp_path / "cgroup"
    root = tmp_path / "fs"
    proc.write_text("0::/job\n")
    (root / "job").mkdir(parents=True)
    (root / "job" / "cpu.max").write_text("250000 100000\n")
    assert cpu._cgroup_quota(proc, root) == 2.5
    (root / "job" / "cpu.max").write_text("max 100000\n")
    assert cpu._cgroup_quota(proc, root) is None
    proc.write_text("4:memory:/x\n3:cpu,cpuacct:/\n")
    (root / "cpu,cpuacct").mkdir()
    (root / "cpu,cpuacct" / "cpu.cfs_quota_us").write_text("200000\n")
    (root / "cpu,cpuacct" / "cpu.cfs_period_us").write_text("100000\n")
    assert cpu._cgroup_quota(proc, root) == 2.0
    (root / "cpu,cpuacct" / "cpu.cfs_quota_us").write_text("-1\n")
    assert cpu._cgroup_quota(proc, root) is None
    assert cpu._cgroup_quota(tmp_path / "missing", root) is None


def test_a_launchers_share_then_omp_num_threads_then_the_cores(monkeypatch):
    monkeypatch.setattr(cpu, "usable_cores", lambda: 6)
    assert cpu.default_threads({"ABLATE_THREADS": "2", "OMP_NUM_THREADS": "4"}) == (2, "ABLATE_THREADS")
    assert cpu.default_threads({"OMP_NUM_THREADS": "4,2"}) == (4, "OMP_NUM_THREADS")  # nested levels: the first
    assert cpu.default_threads({"OMP_NUM_THREADS": "lots"}) == (6, "cores")  # libgomp ignores it too
    with pytest.raises(ConfigError, match=r"^ABLATE_THREADS='0' is not allowed; allowed: an integer >= 1") as err:
        cpu.default_threads({"ABLATE_THREADS": "0"})
    assert "\n" not in str(err.value)


def test_a_bad_share_stops_before_any_run(tiny_cfg, monkeypatch):
    from ablate.train.run import prepare

    monkeypatch.setenv("ABLATE_THREADS", "two")
    with pytest.raises(ConfigError, match="ABLATE_THREADS='two'"):
        prepare(tiny_cfg("trainer.threads=null"))
    assert prepare(tiny_cfg("trainer.threads=1")).trainer.threads == 1  # not read when threads is set


def test_run_threads_uses_the_default_only_when_threads_is_null(monkeypatch):
    from ablate.train.run import run_threads

    monkeypatch.setattr(cpu, "default_threads", lambda: (3, "cores"))
    assert run_threads(None) == 3 and run_threads(1) == 1


def _worker_threads(_):
    import torch

    from ablate.threads import default_threads

    return os.environ.get("ABLATE_THREADS"), torch.get_num_threads(), default_threads()


def test_parallel_workers_split_the_usable_cores(monkeypatch):
    """run_pool (launcher=parallel, and SLURM tasks that pack runs) gives each worker its share of
    the cores this process may use, as torch's threads and as the default of a run in it."""
    from ablate.sweep import packing

    monkeypatch.setattr(packing, "usable_cores", lambda: 4)
    got = [r for _, r in packing.run_pool(_worker_threads, [0, 1], [None, None])]
    assert got == [("2", 2, (2, "ABLATE_THREADS"))] * 2


@pytest.mark.slow
def test_a_run_with_threads_null_trains_on_the_cores_it_may_use(tmp_path):
    """End to end: ``ablate train`` confined to one core records threads=1 (torch would pick 1 too
    here; a cgroup quota it would not see is covered above)."""
    one = {sorted(os.sched_getaffinity(0))[0]}
    out = subprocess.run([sys.executable, "-m", "ablate", "train", *TINY, "trainer.threads=null"], cwd=ROOT,
                         env=_env(ABLATE_HOME=str(tmp_path)), capture_output=True, text=True, timeout=300,
                         preexec_fn=lambda: os.sched_setaffinity(0, one))
    assert out.returncode == 0, out.stderr[-2000:]
    rec = json.loads(next((tmp_path / "outputs" / "runs").glob("*/result.json")).read_text())
    assert rec["status"] == "completed" and rec["threads"] == 1
    assert "trainer.threads=null: 1 torch thread (the cores this process may use)" in out.stderr + out.stdout


# --- OpenMP's wait policy -------------------------------------------------------------------

# 15 parallel regions (an elementwise op on 1M floats, 2 threads), each followed by a sleep: the
# CPU time spent during the sleeps is what idle OpenMP threads burn spinning.
PROBE = """
import json, os, sys, time
{imports}
torch.set_num_threads(2)
x = torch.randn(1_000_000)
idle = 0.0
for _ in range(15):
    y = x * 2.0 + 1.0
    t = time.process_time()
    time.sleep(0.015)
    idle += time.process_time() - t
print(json.dumps({{"wait": ablate.threads.OPENMP_WAIT, "env": os.environ.get("OMP_WAIT_POLICY"),
                   "idle_ms": idle * 1000}}))
"""


def _probe(imports: str, **env: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE.format(imports=imports)], cwd=ROOT, env=_env(**env),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 cores for 2 OpenMP threads")
def test_import_ablate_before_torch_makes_idle_threads_sleep():
    first = _probe("import ablate, sys\nassert 'torch' not in sys.modules\nimport torch")
    late = _probe("import torch\nimport ablate")  # a script that imports torch first: libgomp already loaded
    assert first["wait"] == "passive" and first["env"] == "PASSIVE"
    assert late["wait"] == "late" and late["env"] == "PASSIVE"  # set, for child processes only
    # It takes effect: libgomp's default spins ~300k iterations (a few ms) after every region.
    assert first["idle_ms"] < 20 and late["idle_ms"] > 3 * max(first["idle_ms"], 5), (first, late)


@pytest.mark.parametrize("env", [{"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "1000"}])
def test_a_users_wait_policy_is_kept(env):
    code = "import ablate, json, os; print(json.dumps([ablate.threads.OPENMP_WAIT, os.environ.get('OMP_WAIT_POLICY')]))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(**env), capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout) == ["user", env.get("OMP_WAIT_POLICY")]


def test_quiet_openmp_on_a_given_environment():
    env: dict = {}
    assert cpu.quiet_openmp(env) in ("passive", "late") and env == {"OMP_WAIT_POLICY": "PASSIVE"}
    env = {"GOMP_SPINCOUNT": "0"}
    assert cpu.quiet_openmp(env) == "user" and env == {"GOMP_SPINCOUNT": "0"}
