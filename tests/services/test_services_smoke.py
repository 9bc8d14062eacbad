"""Smoke tests of the real services brought up by `scripts/services/all.sh up`.

Each test skips (with the reason from status.json) when its service is not up.
Run: .venv/bin/pytest tests/services -m service -p no:cacheprovider -q
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
import time
import uuid

import pytest

pytestmark = pytest.mark.service

SACCT_TIMEOUT_S = 90   # sacct usually reports COMPLETED < 2 s after the job ends
JOB_TIMEOUT_S = 120    # a trivial job normally starts within ~1 s (sched_interval=1)


def _run(cmd, timeout=60, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    assert proc.returncode == 0, f"{cmd} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _sacct_state(job_id: str) -> str:
    proc = subprocess.run(
        ["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "State"],
        capture_output=True, text=True, timeout=30,
    )
    return proc.stdout.strip().splitlines()[0] if proc.returncode == 0 and proc.stdout.strip() else ""


def test_sbatch_wrap_completes_and_sacct_sees_it(slurm_cluster, tmp_path):
    out = tmp_path / "hi-%j.out"
    job_id = _run(["sbatch", "--parsable", "--partition=debug", f"--output={out}",
                   "--wrap", "echo hi"]).strip().split(";")[0]
    t0 = time.monotonic()
    state = ""
    while time.monotonic() - t0 < SACCT_TIMEOUT_S:
        state = _sacct_state(job_id)
        if state in {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"}:
            break
        time.sleep(0.5)
    print(f"sacct saw job {job_id} as {state!r} after {time.monotonic() - t0:.1f} s")
    assert state == "COMPLETED", f"job {job_id}: sacct state {state!r} after {SACCT_TIMEOUT_S}s"
    assert (tmp_path / f"hi-{job_id}.out").read_text().strip() == "hi"


WORKER = textwrap.dedent(
    """
    import sys, optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=sys.argv[1], storage=sys.argv[2])
    study.optimize(lambda t: (t.suggest_float("x", -10, 10) - 2) ** 2, n_trials=3)
    """
)


def test_optuna_postgres_two_workers(postgres_url):
    optuna = pytest.importorskip("optuna")
    pytest.importorskip("psycopg2", reason="pip install psycopg2-binary (extra `cluster`)")
    name = f"smoke-{uuid.uuid4().hex[:8]}"
    # Create once, before the workers: racing creates hit DuplicateObject on Optuna's enums.
    optuna.create_study(study_name=name, storage=postgres_url, direction="minimize")
    try:
        procs = [subprocess.Popen([sys.executable, "-c", WORKER, name, postgres_url],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
        for p in procs:
            out, err = p.communicate(timeout=JOB_TIMEOUT_S)
            assert p.returncode == 0, err[-2000:]
        study = optuna.load_study(study_name=name, storage=postgres_url)
        trials = study.trials
        assert len(trials) == 6
        assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
        assert study.best_value == min(t.value for t in trials)
    finally:
        optuna.delete_study(study_name=name, storage=postgres_url)


def _wait_state(job, want: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    state = job.state
    while state != want and time.monotonic() < deadline:
        time.sleep(1)
        job.get_info(mode="force")  # bypass submitit's rate-limited sacct cache
        state = job.state
    return state


def test_submitit_runs_function_on_debug_partition(slurm_cluster, tmp_path):
    submitit = pytest.importorskip("submitit")
    executor = submitit.AutoExecutor(folder=tmp_path / "submitit", cluster="slurm")
    executor.update_parameters(slurm_partition="debug", timeout_min=5, cpus_per_task=1)

    def square_plus_one(x):  # local: cloudpickle ships it by value
        return x * x + 1

    job = executor.submit(square_plus_one, 6)
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while not job.done() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert job.done(), f"job {job.job_id} not done after {JOB_TIMEOUT_S}s: {job.state}"
    assert job.result() == 37
    assert _wait_state(job, "COMPLETED", SACCT_TIMEOUT_S) == "COMPLETED"


def test_submitit_slurm_executor_job_array(slurm_cluster, tmp_path):
    submitit = pytest.importorskip("submitit")
    executor = submitit.SlurmExecutor(folder=tmp_path / "submitit")
    executor.update_parameters(partition="debug", time=5, cpus_per_task=1)
    jobs = executor.map_array(pow, [2, 3, 4], [2, 2, 2])
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while not all(j.done() for j in jobs) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert [j.result() for j in jobs] == [4, 9, 16]
    assert [_wait_state(j, "COMPLETED", SACCT_TIMEOUT_S) for j in jobs] == ["COMPLETED"] * 3


def test_pdflatex_table_to_png(latex_available, tmp_path):
    tex = tmp_path / "t.tex"
    tex.write_text(textwrap.dedent(r"""
        \documentclass{article}
        \usepackage{booktabs,xcolor,colortbl}
        \begin{document}
        \begin{tabular}{lr}\toprule Model & Top-1 \\ \midrule
        \rowcolor{gray!20} MobileNetV2 + CA & 74.3 \\ \bottomrule\end{tabular}
        \end{document}
    """))
    _run([latex_available, "-halt-on-error", "-interaction=nonstopmode", tex.name],
         cwd=tmp_path, timeout=120)
    _run(["pdftoppm", "-png", "-r", "50", "-singlefile", "t.pdf", "t"], cwd=tmp_path)
    assert (tmp_path / "t.png").stat().st_size > 0


def test_chromium_headless_screenshot(chromium_available, tmp_path):
    page = tmp_path / "p.html"
    page.write_text("<html><body><h1 style='color:#c00'>ablate</h1></body></html>")
    shot = tmp_path / "p.png"
    _run([chromium_available, "--headless", "--no-sandbox", "--disable-gpu",
          f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
          "--window-size=400,300", page.as_uri()], timeout=120)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
