"""Launchers: where the runs of a sweep (or the workers of a study) execute.

``local`` (this process, one at a time), ``parallel`` (worker processes here, or K per GPU),
``slurm`` (a submitit job array), ``ray`` (Ray tasks). Each backend is one module of this
package registered in ``LAUNCHERS``; ``get_launcher(config["launcher"])`` builds the one a
run config names. ``_base.py`` holds what they share.
"""
from ablate.sweep.launchers._base import (
    LAUNCHERS,
    Launcher,
    LauncherConfig,
    PackingConfig,
    capture_env,
    get_launcher,
    run_one,
    setup_worker,
)

__all__ = ["LAUNCHERS", "Launcher", "LauncherConfig", "PackingConfig", "capture_env", "get_launcher",
           "run_one", "setup_worker"]
