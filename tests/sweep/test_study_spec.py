"""Study sweep files and storage URLs: validation before compute, one-line errors."""
from __future__ import annotations

import importlib.util

import pytest

from ablate.errors import ConfigError
from ablate.sweep import list_sweeps, load_sweep
from ablate.sweep.storage import check_storage_url, redact, resolve_storage_url
from ablate.sweep.study_spec import StudySpec

SPACE = {"attention.reduction": {"type": "categorical", "choices": [8, 16]}}


def study(**kw) -> StudySpec:
    return StudySpec(name="s", **{"search": SPACE, **kw})


def test_tune_reduction_is_a_tpe_study_over_the_ca_knobs():
    spec = load_sweep("tune_reduction")
    assert spec.kind == "optuna" and spec.resolved_sampler == "tpe" and spec.directions == ["maximize"]
    assert {p.key for p in spec.params} >= {"attention.reduction", "attention.min_mid", "attention.act", "optim.lr"}
    lr = next(p for p in spec.params if p.key == "optim.lr")
    assert lr.type == "float" and lr.log


def test_pareto_study_maximises_top1_and_minimises_madds():
    spec = load_sweep("tune_reduction_pareto")
    assert spec.directions == ["maximize", "minimize"] and spec.resolved_sampler == "nsga2"


def test_trial_overrides_are_ablate_train_command_lines():
    spec = study(overrides=["attention=ca"], seed=3)
    assert spec.trial_overrides({"attention.reduction": 16, "optim.lr": 0.05}, 7, ["trainer.epochs=1"]) == [
        "attention=ca", "trainer.epochs=1", "attention.reduction=16", "optim.lr=0.05", "seed=3", "sweep=s", "+trial=7"]


def test_corners_cover_every_choice_and_both_bounds():
    spec = study(search={"attention.act": ["relu", "silu"], "optim.lr": {"type": "float", "low": 0.01, "high": 0.5}})
    corners = spec.corner_overrides()
    assert {c[0] for c in corners} == {"attention.act=relu", "attention.act=silu"}
    assert {c[1] for c in corners} == {"optim.lr=0.01", "optim.lr=0.5"}


@pytest.mark.parametrize("kw, words", [
    ({"search": {}}, ["search space is empty", "allowed:"]),
    ({"search": {"attention.reduction": {"type": "normal"}}}, ["'normal'", "categorical, int, float"]),
    ({"search": {"attention.reduction": {"type": "categorical", "choices": []}}}, ["choices must be a non-empty list"]),
    ({"search": {"optim.lr": {"type": "float", "low": 0.5, "high": 0.1}}}, ["low=0.5 high=0.1"]),
    ({"search": {"optim.lr": {"type": "float", "low": 0.0, "high": 0.1, "log": True}}}, ["log=true needs low > 0"]),
    ({"search": {"optim.lr": {"type": "float", "low": 0.1, "high": 1, "lg": True}}}, ["'lg'", "log"]),
    ({"objectives": ["accuracy"]}, ["'accuracy'", "top1", "madds", "latency_ms"]),
    ({"sampler": "cmaes"}, ["'cmaes'", "auto, nsga2, random, tpe"]),
    ({"pruner": "patient"}, ["'patient'", "hyperband, median, none"]),
    ({"objectives": ["top1", "madds"]}, ["pruner 'median' needs one objective", "none"]),
    ({"objectives": ["madds"]}, ["per-epoch objective", "top1"]),
    ({"n_trials": 0}, ["n_trials=0"]),
    ({"workers": 0}, ["workers=0"]),
    ({"storage": "redis://localhost"}, ["bad storage URL 'redis://localhost'", "sqlite:///PATH", "postgresql://"]),
])
def test_bad_study_specs_are_one_line_errors(kw, words):
    with pytest.raises(ValueError) as err:
        study(**kw)
    msg = str(err.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, (w, msg)


@pytest.mark.parametrize("url", ["sqlite://relative.db", "postgresql://", "mysql:///db", "", "journal://", "foo"])
def test_bad_storage_urls(url):
    with pytest.raises(ValueError, match="bad storage URL"):
        check_storage_url(url)


def test_storage_urls_resolve_to_what_workers_open(tmp_path):
    assert resolve_storage_url(None, tmp_path / "s") == f"journal://{tmp_path / 's' / 'optuna.journal'}"
    assert resolve_storage_url(str(tmp_path / "x.journal"), tmp_path) == f"journal://{tmp_path / 'x.journal'}"
    assert resolve_storage_url("sqlite:///a.db", tmp_path) == "sqlite:///a.db"
    if any(importlib.util.find_spec(m) for m in ("psycopg2", "psycopg")):
        pg = resolve_storage_url("postgresql://u:secret@h:5432/db", tmp_path)
        assert pg.startswith("postgresql+psycopg") and pg.endswith("://u:secret@h:5432/db")
        assert redact(pg).endswith("://u:***@h:5432/db")
    else:  # without the cluster extra: one line naming the missing driver, password left out
        with pytest.raises(ConfigError, match=r"u:\*\*\*@h:5432/db needs a PostgreSQL driver"):
            resolve_storage_url("postgresql://u:secret@h:5432/db", tmp_path)


def test_a_sweep_file_with_an_empty_search_space(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text("kind: optuna\nsearch: {}\n")
    with pytest.raises(ValueError, match="sweep 't': search space is empty"):
        load_sweep(str(p))


@pytest.mark.parametrize("name", [n for n in list_sweeps() if load_sweep(n).kind == "optuna"])
def test_every_shipped_study_plans_without_compute(name, home):
    from ablate.sweep.study import plan_study

    spec = load_sweep(name)
    job, config = plan_study(spec, ["trainer.epochs=1"])
    assert job.storage == f"journal://{home / 'outputs' / 'sweeps' / name / 'optuna.journal'}"
    assert config["attention"]["kind"] == "ca"
    assert not (home / "outputs" / "runs").exists() and not (home / "outputs" / "sweeps").exists()


def test_a_bad_search_value_stops_the_study_before_compute(tmp_path, home):
    from ablate.sweep.study import plan_study

    p = tmp_path / "t.yaml"
    p.write_text("kind: optuna\noverrides: [attention=ca]\nsearch: {attention.act: [relu, moon]}\n")
    with pytest.raises(ValueError, match="moon"):
        plan_study(load_sweep(str(p)))
    assert not (home / "outputs").exists()
