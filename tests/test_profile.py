"""`ablate profile`: Params/MAdds/latency without training, as records and a table."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from ablate.cli import main


def test_profile_one_model_matches_the_paper_counts(home, capsys):
    assert main(["profile", "model=mobilenet_v2", "attention=ca", "--repeats", "1"]) == 0
    df = pd.read_csv(home / "outputs" / "tables" / "profile.csv")
    row = df.iloc[0]
    # CA paper Table 2: MobileNetV2 + CA 3.95M params, 310M M-Adds (gating multiplies counted)
    assert round(row["params"] / 1e6, 2) == 3.95 and round(row["madds"] / 1e6, -1) == 310
    assert row["input"] == "224x224" and row["latency_ms"] > 0
    recs = list((home / "outputs" / "profiles").glob("*/result.json"))
    assert len(recs) == 1 and json.loads(recs[0].read_text())["kind"] == "profile"


def test_profile_prints_the_insertion_plan(home, capsys):
    assert main(["profile", "model=mobilenet_v2", "attention=ca", "--repeats", "1", "--plan"]) == 0
    out = capsys.readouterr().out
    rows = [ln for ln in out.splitlines() if ln.strip().endswith(" ca") and "after_depthwise" in ln]
    assert len(rows) == 16  # CA paper: every inverted residual block with expand_ratio != 1


def test_profile_multirun_grid_and_small_stem(home):
    assert main(["profile", "-m", "model=mobilenet_v2_tiny", "attention=none,ca", "model.stem=small",
                 "--repeats", "1"]) == 0
    df = pd.read_csv(home / "outputs" / "tables" / "profile.csv")
    assert list(df["attention"]) == ["none", "ca"] and set(df["input"]) == {"32x32"}
    assert df.loc[1, "params"] > df.loc[0, "params"]


def test_profile_sweep_builds_its_table(home, tmp_path, capsys):
    sweep = tmp_path / "tinyprof.yaml"
    sweep.write_text("grid: {attention: [none, se, ca]}\nseeds: [0, 1]\n")
    assert main(["profile", "--sweep", str(sweep), "model=mobilenet_v2_tiny", "--repeats", "1"]) == 0
    manifest = json.loads((home / "outputs" / "sweeps" / "tinyprof" / "manifest.json").read_text())
    assert len(manifest["runs"]) == 3  # seeds do not change a profile: one per model


@pytest.mark.parametrize("argv, words", [
    (["profile", "model=resnet9000"], ["model/resnet9000", "mobilenet_v2"]),
    (["profile", "attention.kind=xyz"], ["'xyz'", "ca"]),
    (["profile", "-m", "attention=none,ca", "attention.reduction=0"], ["reduction"]),
    (["profile", "--input-size", "2"], ["--input-size", ">= 8"]),
])
def test_profile_bad_input(argv, words, home, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and all(w in err for w in words), err
    assert not (home / "outputs" / "profiles").exists()


def test_profile_measures_each_model_once_until_its_config_or_settings_change(home, monkeypatch):
    """The profile records are the cache: a second call measures nothing and reports the same
    numbers; a changed config, other threads or --remeasure measure again."""
    import ablate.models.complexity as complexity

    measured = []
    real = complexity.profile_model
    monkeypatch.setattr(complexity, "profile_model", lambda *a, **k: measured.append(1) or real(*a, **k))
    args = ["profile", "-m", "model=mobilenet_v2_tiny", "attention=none,ca", "model.stem=small", "--repeats", "1"]
    csv = home / "outputs" / "tables" / "profile.csv"
    assert main(args) == 0 and len(measured) == 2
    first = pd.read_csv(csv)
    assert main(args) == 0 and len(measured) == 2  # nothing measured again
    pd.testing.assert_frame_equal(pd.read_csv(csv), first)  # the same latency, read from the records
    assert main([*args, "model.width=0.5"]) == 0 and len(measured) == 4  # a config change: new models
    assert main([*args, "--threads", "2"]) == 0 and len(measured) == 6  # measured another way
    assert main([*args, "--remeasure"]) == 0 and len(measured) == 8
    assert main(args) == 0 and len(measured) == 8
    # the re-measured record replaced the first one, which is kept under attempts/
    assert list((home / "outputs" / "profiles").glob("*/attempts/result-*.json"))
