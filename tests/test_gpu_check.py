"""bench/gpu.sh, the CUDA check, run where there is no GPU: it must run on the CPU (CUDA parts
skipped, quick sizes), its CUDA-vs-CPU checks must run (against the CPU itself) and pass, and a
difference beyond tolerance must make the exit status non-zero."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT


def _gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "bench" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_difference_beyond_tolerance_is_a_failure_and_exit_status_1(monkeypatch, capsys):
    import torch

    gc = _gpu_check()
    p = gc.Parity()
    a = torch.randn(100)
    p.check("same", a, a.clone(), gc.FP32_TOL)
    p.check("summation order", a, a * (1 + 1e-6), gc.FP32_TOL)
    p.check("off", a, a + 0.1 * a.norm() / 10, gc.FP32_TOL)
    p.check("nan", a, torch.full_like(a, float("nan")), gc.FP32_TOL)
    p.worst("group", {"a": (a, a.clone()), "b": (a, a + 1)}, gc.FP32_TOL)
    p.worst("shapes", {"a": (a, a[:50])}, gc.FP32_TOL)
    assert p.failed == ["off", "nan", "group", "shapes"]
    assert "worst: b" in capsys.readouterr().out
    monkeypatch.setattr(gc, "parity", lambda device, quick: ["off"])
    monkeypatch.setattr(sys, "argv", ["gpu_check.py", "--sections", "parity", "--parity-device", "cpu"])
    assert gc.main() == 1
    assert "CUDA differs from CPU beyond tolerance in 1 check(s): off" in capsys.readouterr().out


@pytest.mark.slow
def test_gpu_sh_runs_on_cpu_quick():
    env = {**os.environ, "ABLATE_GPU_QUICK": "1", "PYTHON": sys.executable, "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run(["bash", str(ROOT / "bench" / "gpu.sh")], capture_output=True, text=True, env=env,
                         timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    assert "CUDA no, quick" in text and "[ratios] cpu" in text and "CA block / SE block" in text
    assert "CA step / plain step" in text and "[throughput] skipped: no CUDA device" in text
    assert "[parity] skipped: no CUDA device" in text and "bare loop on CUDA: skipped" in text
    assert text.rstrip().endswith("== gpu.sh: done")


@pytest.mark.slow
def test_the_parity_checks_run_and_pass_against_the_cpu_itself(tmp_path):
    """The CUDA code path of the parity section, with the CPU in CUDA's place: every check runs
    (blocks, the net, bf16 autocast, `ablate train` twice) and passes."""
    env = {**os.environ, "PYTHON": sys.executable}
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--quick", "--sections",
                          "parity,throughput", "--parity-device", "cpu", "--device", "cpu"],
                         capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert not [ln for ln in lines if "FAIL" in ln]
    checks = [ln for ln in lines if ln.strip().startswith("ok")]
    assert any("cbam channels_last" in ln for ln in checks) and any("every parameter's grad" in ln for ln in checks)
    assert any("bf16 autocast" in ln for ln in checks) and any("ablate train cuda vs cpu" in ln for ln in checks)
    assert "images/s" in out.stdout
