"""The command line exits without the interpreter's teardown, but after every exit handler."""
from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.helpers import ROOT

SCRIPT = textwrap.dedent("""
    import atexit, sys, threading
    from ablate.cli import exit_fast
    atexit.register(lambda: open(sys.argv[1], "w").write("handler ran"))
    class Late:  # a finaliser that only the interpreter's teardown would run
        def __del__(self):
            print("teardown ran")
    keep = Late()
    if sys.argv[2] == "thread":
        threading.Thread(target=lambda: (__import__("time").sleep(0.5), print("thread finished"))).start()
    print("printed before exit", end="")
    exit_fast(3)
""")


def _run(tmp_path, mode):
    marker = tmp_path / "marker"
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(marker), mode], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    return out, marker


def test_exit_fast_runs_exit_handlers_flushes_and_skips_teardown(tmp_path):
    out, marker = _run(tmp_path, "plain")
    assert out.returncode == 3
    assert marker.read_text() == "handler ran"
    assert out.stdout == "printed before exit"          # flushed; no "teardown ran": finalisers skipped


def test_exit_fast_waits_for_a_live_non_daemon_thread_like_a_normal_exit(tmp_path):
    out, marker = _run(tmp_path, "thread")
    assert out.returncode == 3 and marker.read_text() == "handler ran"
    assert "thread finished" in out.stdout


def test_python_m_ablate_exit_codes_are_kept():
    ok = subprocess.run([sys.executable, "-m", "ablate", "--version"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    bad = subprocess.run([sys.executable, "-m", "ablate", "nosuch"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert ok.returncode == 0 and ok.stdout.startswith("ablate ")
    assert bad.returncode == 2 and "unknown command 'nosuch'" in bad.stderr
