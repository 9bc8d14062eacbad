"""``ablate report``: one self-contained HTML page per sweep (tables, plots, attention maps,
holes), rendered by headless Chromium to a non-trivial PNG."""
from __future__ import annotations

import re
import subprocess

import pytest

from ablate.sweep import load_sweep
from ablate.sweep.runner import plan_sweep, write_manifest
from tests.report._runs import fake_run


@pytest.fixture(scope="module")
def branches_report(tmp_path_factory):
    """The branches sweep with 2 seeds planned: 10 runs done, one failed, one never ran
    (module-scoped: built once for the page checks and the Chromium rendering)."""
    with pytest.MonkeyPatch.context() as mp:
        home = tmp_path_factory.mktemp("report_home")
        mp.setenv("ABLATE_HOME", str(home))
        yield _build_branches_report(home)


def _build_branches_report(home):
    from ablate.cli import main
    from tests.helpers import TINY

    spec = load_sweep("branches")
    spec.seeds = [0, 1]
    runs = plan_sweep(spec, TINY)
    write_manifest(spec, runs, home / "outputs" / "sweeps", TINY)
    for i, r in enumerate(runs[:-1]):
        kind = r.plan.config["attention"]
        top1 = 40.0 + 10 * (kind["kind"] == "ca") + 5 * (kind.get("branches") == "hw") + r.plan.seed
        fake_run(r.overrides, None if i == 3 else top1, status="failed" if i == 3 else "completed")
    assert main(["report", "branches"]) == 0
    return home / "outputs" / "reports" / "branches"


def test_report_is_one_self_contained_page(branches_report):
    page = (branches_report / "report.html").read_text()
    assert "Branches ablation (CA paper, Table 1)" in page and "+ CA (H+W)" in page
    assert "1 failed" in page and "1 missing" in page and "12 planned runs" in page
    assert len(re.findall(r'src="data:image/png;base64,', page)) == 3  # curves, pareto, attention maps
    assert not re.search(r'(src|href)="(https?:)?//', page) and "<script" not in page and "<link" not in page
    assert "not drawn" not in page
    plots = sorted(p.name for p in (branches_report / "plots").iterdir())
    assert plots == [f"branches-{i}-{k}.{ext}" for i, k in enumerate(("curves", "pareto", "attention_maps"))
                     for ext in ("pdf", "png")]
    assert sorted(p.suffix for p in (branches_report / "tables").iterdir()) == [".csv", ".html", ".md", ".tex"]


def test_report_figures_name_their_runs_and_bands_and_keep_their_size(branches_report):
    """Each <img> carries its PNG's own size (the page never scales a figure down); the captions
    say what the bands are and over how many seeds; the attention maps name the run of each
    attention setting of the table (CA H only and W only included)."""
    import base64
    import io

    from PIL import Image

    from ablate.track.store import RunDirStore

    page = (branches_report / "report.html").read_text()
    figures = re.findall(r'<figure><img alt="([^"]+)" width="(\d+)" height="(\d+)" src="data:image/png;base64,([^"]+)">'
                         r"<figcaption>([^<]*)</figcaption>", page)
    assert [f[0] for f in figures] == ["branches-0-curves", "branches-1-pareto", "branches-2-attention_maps"]
    for _, width, height, data, _ in figures:
        with Image.open(io.BytesIO(base64.b64decode(data))) as im:
            assert im.size == (int(width), int(height)) and im.size[0] <= 1150
    captions = {f[0]: f[4] for f in figures}
    assert "bands: ± 1 std over the seeds (n = 1–2 seeds per setting" in captions["branches-0-curves"]
    assert "mean over its seeds" in captions["branches-1-pareto"]
    store = RunDirStore(branches_report.parents[1] / "runs")
    recs = [r for r in store.records() if r["status"] == "completed"]
    maps = captions["branches-2-attention_maps"]
    for label in ("+ SE", "+ CBAM", "+ CA (H only)", "+ CA (W only)", "+ CA (H+W)"):
        assert f"{label}: run " in maps
    named = set(re.findall(r": run ([0-9a-f]{12})", maps))
    assert len(named) == 5 and named <= {r["run_key"] for r in recs}
    assert "MobileNetV2 (baseline): run" not in maps  # no attention module, no map


def test_plot_that_cannot_be_drawn_is_reported(home):
    from ablate.report.html import build_report
    from ablate.report.sources import project_paths
    from tests.helpers import TINY

    spec = load_sweep("branches")
    spec.seeds = [0]
    runs = plan_sweep(spec, TINY)
    write_manifest(spec, runs, home / "outputs" / "sweeps", TINY)
    for r in runs:  # only plain and SE runs, without checkpoints: no CA/CBAM maps possible
        if r.plan.config["attention"]["kind"] in ("none", "se"):
            fake_run(r.overrides, 50.0, checkpoint=False)
    page = build_report("branches", paths=project_paths()).read_text()
    assert "attention_maps not drawn: no completed CA, SE or CBAM run with a checkpoint.pt" in page
    assert page.count("data:image/png;base64,") == 2


def test_unknown_sweep_names_the_known_ones(home, capsys):
    from ablate.cli import main

    assert main(["report", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown sweep 'nope'" in err and "allowed: " in err and "branches" in err and err.count("\n") == 1


@pytest.mark.service
def test_report_renders_in_headless_chromium(branches_report, chromium_available, tmp_path):
    from PIL import Image, ImageStat

    shot = tmp_path / "report.png"
    res = subprocess.run(
        [chromium_available, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-default-apps", "--no-first-run", "--hide-scrollbars",
         "--enable-logging=stderr", "--v=0", f"--screenshot={shot}", "--window-size=1280,2400",
         (branches_report / "report.html").as_uri()],
        capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
    assert "Uncaught" not in res.stderr
    img = Image.open(shot).convert("L")
    assert img.size == (1280, 2400) and shot.stat().st_size > 50_000
    stat = ImageStat.Stat(img)
    assert stat.stddev[0] > 20  # tables and plots, not a blank page
    # the plots are drawn: many rows of the page differ from white
    rows = [sum(1 for x in range(0, 1280, 8) if img.getpixel((x, y)) < 200) for y in range(0, 2400, 8)]
    assert sum(r > 5 for r in rows) > 60
    (branches_report / "screenshot.png").write_bytes(shot.read_bytes())
    # Every figure, the attention maps above all, is shown at least as wide as it was drawn (no
    # down-scaled text): the page as Chromium lays it out at the screenshot's width, measured by a
    # script added to a copy (the report itself has none).
    import json

    probe = tmp_path / "probe.html"
    probe.write_text((branches_report / "report.html").read_text().replace("</body>", """<script>
      window.addEventListener('load', () => document.body.setAttribute('data-imgs', JSON.stringify(
        [...document.images].map(i => [i.alt, i.getBoundingClientRect().width, i.naturalWidth]))));
      </script></body>"""))
    res = subprocess.run(
        [chromium_available, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--window-size=1280,2400", "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=120)
    found = re.search(r'data-imgs="([^"]*)"', res.stdout)
    assert res.returncode == 0 and found, res.stderr[-2000:]
    shown = {alt: (w, natural) for alt, w, natural in json.loads(found.group(1).replace("&quot;", '"'))}
    assert set(shown) == {"branches-0-curves", "branches-1-pareto", "branches-2-attention_maps"}
    assert shown["branches-2-attention_maps"][1] > 800  # the figure itself, not a thumbnail
    assert all(w >= natural > 0 for w, natural in shown.values()), shown


def test_sweep_without_a_table_spec_gets_the_default_plots(home):
    from ablate.report.html import build_report
    from ablate.report.sources import project_paths
    from ablate.sweep import SweepSpec
    from tests.helpers import TINY

    spec = SweepSpec(name="adhoc", grid={"attention": ["none", "ca"]}, seeds=[0])
    runs = plan_sweep(spec, TINY)
    write_manifest(spec, runs, home / "outputs" / "sweeps", TINY)
    for r, top1 in zip(runs, (40.0, 60.0)):
        fake_run(r.overrides, top1)
    out = build_report("adhoc", paths=project_paths())
    page = out.read_text()
    assert "No table spec in analysis/ names this sweep" in page and page.count("data:image/png;base64,") == 2
    assert sorted(p.name for p in (out.parent / "plots").glob("*.png")) == ["adhoc-0-curves.png", "adhoc-1-pareto.png"]


def test_optuna_study_report_draws_the_study_front(home, monkeypatch):
    """A tuning sweep's manifest lists no runs: its trials are the runs tagged with the sweep,
    and the Pareto plot takes its front from them, with the directions the manifest records
    (the report never opens the study's storage)."""
    from ablate.report.html import build_report
    from ablate.report.sources import project_paths
    from ablate.track.manifest import SweepManifest

    recs = [fake_run(["attention=ca", f"attention.reduction={r}", "sweep=tunex"], top1) for r, top1 in ((8, 70.0), (32, 65.0))]
    SweepManifest("tunex", "optuna", objectives=["top1", "madds"], directions=["maximize", "minimize"],
                  runs_dir=str(home / "outputs" / "runs")).write(home / "outputs" / "sweeps")
    from ablate.report import plots

    fronts = []
    real = plots.plot_pareto
    monkeypatch.setattr(plots, "plot_pareto", lambda *a, **k: fronts.append(k.get("study_objectives")) or real(*a, **k))
    page = build_report("tunex", paths=project_paths()).read_text()
    assert "2 planned runs; 2 completed" in page and page.count("data:image/png;base64,") == 2
    assert fronts == [{"top1": "maximize", "madds": "minimize"}] and len(recs) == 2
