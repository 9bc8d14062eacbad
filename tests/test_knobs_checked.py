"""Every knob is checked before any compute: each bad input below used to train (or fail after
loading the data, with a traceback, on every relaunch); now ``ablate`` exits 2 with one line
naming the value and what is allowed, and no run directory, data cache or table is written."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import TINY

TABLE = """title: t
sweep: mine
rows:
  - {label: plain, where: {attention.knd: none}}
metrics:
  - {key: top1, label: Top-1}
formats: [md]
"""


def _train(*overrides):
    return lambda tmp: ["train", *TINY, *overrides]


def _sweep_file(text: str):
    def make(tmp: Path) -> list[str]:
        path = tmp / "my_sweep.yaml"
        path.write_text(text)
        return ["sweep", str(path), "--dry-run", *TINY]

    return make


def _table_with_a_typo(tmp: Path) -> list[str]:
    from ablate.track.store import RunDirStore
    from tests.report._synth import record

    store = RunDirStore(tmp / "outputs" / "runs")  # tmp is ABLATE_HOME (the home fixture)
    for kind in ("none", "ca"):
        store.put({**record(f"r_{kind}", {"attention.kind": kind}, 0, 50.0), "sweep": "mine"})
    (tmp / "t.yaml").write_text(TABLE)
    return ["table", str(tmp / "t.yaml")]


BAD = {
    "lr negative": (_train("optim.lr=-1"), ["optim.lr=-1", "allowed: a number > 0"]),
    "lr not a number": (_train("optim.lr=abc"), ["optim.lr='abc'", "allowed: a number > 0"]),
    "momentum negative": (_train("optim=sgd", "optim.momentum=-0.9"), ["optim.momentum=-0.9", "allowed: a number in [0, 1)"]),
    "weight decay negative": (_train("optim.weight_decay=-0.1"), ["optim.weight_decay=-0.1", "allowed: a number >= 0"]),
    "grad clip negative": (_train("trainer.grad_clip=-1"), ["trainer.grad_clip=-1", "allowed: null (off) or a number > 0"]),
    "compile maybe": (_train("trainer.compile=maybe"), ["trainer.compile='maybe'", "allowed: true, false"]),
    "amp yes": (_train("trainer.amp=yes"), ["trainer.amp='yes'", "allowed: true, false"]),
    "pad beyond margin": (_train("data.pad=3"), ["alignment: pad=3", "margin=2", "allowed: pad <= 2"]),
    "hflip on position": (_train("data=position", "data.hflip=true"), ["position: hflip=true", "allowed: false"]),
    "seed beyond int64": (_train(f"seed={2**63}"), [f"seed={2**63}", f"allowed: an integer in [0, {2**63 - 1}]"]),
    "latency repeats 0": (_train("trainer.latency_repeats=0"), ["trainer.latency_repeats=0", "allowed: an integer >= 1"]),
    "sweep yaml syntax": (_sweep_file("grid: {attention: [none\nseeds: [0]\n"),
                          ["sweep 'my_sweep'", "is not valid YAML", "line 2, column", "allowed: a YAML mapping"]),
    "sweep unknown table": (_sweep_file("table: no_such_table\ngrid: {attention: [none]}\nseeds: [0]\n"),
                            ["sweep 'my_sweep'", "unknown table spec 'no_such_table'", "allowed: ", "branches"]),
    "table where typo": (_table_with_a_typo, ["table 't', row 'plain'", "'attention.knd'", "close: attention.kind"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_before_any_compute(case, home, tmp_path, capsys):
    from ablate.cli import main

    make, needles = BAD[case]
    argv = make(tmp_path)
    runs = home / "outputs" / "runs"
    run_dirs = lambda: sorted(p.name for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []  # noqa: E731
    before = run_dirs()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("ablate: error: ") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, (needle, err)
    assert run_dirs() == before  # no run dir
    assert not (home / "data").exists()  # no data generated or cached
    assert not (home / "outputs" / "tables").exists() and not (home / "outputs" / "sweeps").exists()


def test_the_good_neighbours_still_pass(home):
    """The same knobs at allowed values (and a where key that only some runs have) are fine."""
    from ablate.config import compose
    from ablate.report import build_table
    from ablate.report.spec import TableSpec
    from ablate.train.run import prepare
    from tests.report._synth import record

    for over in (["optim=sgd", "optim.momentum=0.0", "optim.nesterov=false", "optim.weight_decay=0", "trainer.grad_clip=1.5"],
                 ["trainer.compile=false", "trainer.amp=true", "data.pad=2", f"seed={2**63 - 1}"],
                 ["data=position", "data.augment=true", "data.pad=2"], ["optim.lr=1e30"]):
        prepare(compose([*TINY, *over]))
    spec = TableSpec(name="t", rows=[{"label": "h", "where": {"attention.kind": "ca", "attention.branches": "h"}},
                                     {"label": "plain", "where": {"attention.kind": "none", "attention.extra": None}}],
                     metrics=[{"key": "top1", "label": "T"}])
    recs = [record("a", {"attention.kind": "none"}, 0, 50.0),
            record("b", {"attention.kind": "ca", "attention.branches": "h"}, 0, 60.0)]
    assert build_table(spec, recs).display["n"].tolist() == ["1", "1"]
    assert build_table(spec, []).display["n"].tolist() == ["0", "0"]  # no runs: nothing to check against
