"""Run identity: same experiment -> same key, whatever paths/tracking/launcher say."""
from ablate.track.runkey import run_key, semantic_config

BASE = {
    "seed": 0, "sweep": "branches", "tags": [], "force": False,
    "paths": {"root": "/a"}, "tracking": {"mode": "offline"}, "launcher": {"name": "local"},
    "model": {"name": "mobilenet_v2_tiny", "width": 1.0},
    "attention": {"kind": "ca", "reduction": 32},
    "data": {"name": "alignment", "root": "/a/data", "num_workers": 0, "n_train": 100},
    "trainer": {"epochs": 5, "device": "auto", "threads": None},
}


def variant(**changes):
    import copy

    cfg = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = cfg
        for p in parents:
            node = node[p]
        node[leaf] = value
    return cfg


def test_key_is_stable_and_short():
    assert run_key(BASE) == run_key(variant()) and len(run_key(BASE)) == 12


def test_non_semantic_keys_do_not_change_the_key():
    for change in ({"paths__root": "/b"}, {"tracking__mode": "disabled"}, {"launcher__name": "slurm"},
                   {"sweep": "other"}, {"data__root": "/x"}, {"trainer__device": "cuda"}, {"trainer__threads": 4}):
        assert run_key(variant(**change)) == run_key(BASE), change


def test_semantic_keys_change_the_key():
    keys = {run_key(variant(**c)) for c in ({"seed": 1}, {"attention__reduction": 16}, {"model__width": 0.5},
                                               {"data__n_train": 200}, {"trainer__epochs": 6})}
    assert len(keys) == 5 and run_key(BASE) not in keys


def test_semantic_config_leaves_input_untouched():
    cfg = variant()
    semantic_config(cfg)
    assert cfg == BASE and "paths" not in semantic_config(cfg)
