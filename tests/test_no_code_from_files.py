"""No code runs from data or result files: CIFAR pickles go through a restricted unpickler,
configs instantiate only optimisers, sweep and table names stay inside the output dir, and
Markdown/HTML tables render labels literally."""
from __future__ import annotations

import builtins
import os
import pickle
import struct

import numpy as np
import pytest

from ablate.errors import ConfigError
from tests.helpers import TINY

C10 = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]


# --- CIFAR pickles ------------------------------------------------------------------------
class _Payload:
    def __init__(self, fn, arg):
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return (self.fn, (self.arg,))


@pytest.mark.parametrize("how", ["os.system", "builtins.eval", "builtins.exec"])
def test_a_crafted_cifar_batch_runs_nothing(tmp_path, how):
    from ablate.data import load_dataset

    marker = tmp_path / "PWNED"
    payload = {"os.system": _Payload(os.system, f"touch {marker}"),
               "builtins.eval": _Payload(builtins.eval, f"open({str(marker)!r}, 'w').close()"),
               "builtins.exec": _Payload(builtins.exec, f"open({str(marker)!r}, 'w').close()")}[how]
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    for f in C10:
        (d / f).write_bytes(pickle.dumps({b"data": payload, b"labels": [0]}, protocol=2))
    with pytest.raises(ConfigError) as err:
        load_dataset("cifar10", root=tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and str(d / "data_batch_1") in msg and "refused to unpickle global" in msg
    assert how.split(".")[1] in msg  # the refused global is named (os.system pickles as posix.system)
    assert not marker.exists()


class _Py2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 str (BINSTRING), as the official CIFAR files hold them."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _save_py2_str(self, obj: bytes) -> None:
        n = len(obj)
        self.write((pickle.SHORT_BINSTRING + bytes([n]) if n < 256 else pickle.BINSTRING + struct.pack("<i", n)) + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str


def _py2_dump(path, obj) -> None:
    import io

    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump({k.encode(): v for k, v in obj.items()})
    # numpy 1.x (which wrote the official files) names the reconstructor numpy.core.multiarray
    path.write_bytes(buf.getvalue().replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n"))


def test_cifar_batches_in_the_official_python2_format_still_load(tmp_path):
    from ablate.data import load_dataset

    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    rows = np.arange(4 * 3072, dtype=np.int64).reshape(4, 3072).astype(np.uint8)
    for f in C10[:-1]:
        _py2_dump(d / f, {"batch_label": b"training batch 1 of 5", "data": rows, "labels": [0, 1, 2, 3],
                          "filenames": [b"a.png", b"b.png", b"c.png", b"d.png"]})
    _py2_dump(d / "batches.meta", {"label_names": [f"n{i}".encode() for i in range(10)], "num_vis": 3072})
    assert b"numpy.core.multiarray\n_reconstruct" in (d / "test_batch").read_bytes()
    b = load_dataset("cifar10", root=tmp_path)
    assert (len(b.train), len(b.val), b.class_names[:2]) == (20, 4, ("n0", "n1"))
    assert b.train.images.reshape(20, -1)[1].numpy().tolist() == rows[1].tolist()


def test_an_unreadable_cifar_batch_is_one_line(tmp_path):
    from ablate.data import load_dataset

    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    for f in C10:
        (d / f).write_bytes(b"not a pickle")
    with pytest.raises(ConfigError, match="not a readable CIFAR batch"):
        load_dataset("cifar10", root=tmp_path)


# --- optimiser targets --------------------------------------------------------------------
@pytest.mark.parametrize("overrides, needles", [
    (["optim._target_=builtins.eval"], ["optim._target_='builtins.eval' is not an optimiser"]),
    (["optim._target_=torch.load"], ["optim._target_='torch.load' is not an optimiser"]),
    (["optim._target_=os.system"], ["optim._target_='os.system'"]),
    (["optim._target_=torch.optim.Optimizer"], ["'torch.optim.Optimizer' is not an optimiser"]),
    (["optim._target_=no_such_pkg.Opt"], ["no module found"]),
    (["optim._target_=torch.optim.NoSuch"], ["has no 'NoSuch'"]),
    (["optim._partial_=false"], ["optim._partial_=False", "allowed: true"]),
    (["+optim._recursive_=true"], ["optim._recursive_ is not allowed"]),
    (["+optim.extra._target_=os.system"], ["optim.extra._target_ is not allowed"]),
    (["+optim.betaz=0.5"], ["has no argument 'betaz'", "betas"]),
    (["optim=sgd", "optim.momentum=0.0"], ["Nesterov momentum requires a momentum"]),
])
def test_only_optimisers_are_instantiated(home, capsys, monkeypatch, overrides, needles):
    import torch

    from ablate.cli import main

    called = []
    monkeypatch.setattr(torch, "load", lambda *a, **k: called.append(a))
    monkeypatch.setattr(os, "system", lambda *a, **k: called.append(a))
    assert main(["train", *TINY, *overrides]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and all(n in err for n in needles), err
    assert called == [] and not (home / "outputs").exists()


def test_a_sweep_file_cannot_smuggle_a_target(home, tmp_path, capsys):
    from ablate.cli import main

    path = tmp_path / "evil.yaml"
    path.write_text("overrides: ['optim._target_=torch.load', '+optim.f=/tmp/x.pt']\ngrid: {attention: [none]}\nseeds: [0]\n")
    assert main(["sweep", str(path), *TINY]) == 2
    assert "optim._target_='torch.load' is not an optimiser" in capsys.readouterr().err
    assert not (home / "outputs").exists()


def test_optimisers_other_than_the_shipped_ones_are_allowed(home):
    from ablate.config import compose
    from ablate.train.run import prepare

    plan = prepare(compose([*TINY, "optim._target_=torch.optim.RMSprop", "~optim.weight_decay", "+optim.alpha=0.9"]))
    assert plan.optim["_target_"] == "torch.optim.RMSprop"


def test_a_plan_built_without_prepare_still_instantiates_only_optimisers(home):
    """The training path checks the target too: a RunPlan edited or built by hand cannot reach
    Hydra's instantiate with another callable."""
    from ablate.train.run import _optimizer_factory

    with pytest.raises(ConfigError, match="is not an optimiser"):
        _optimizer_factory({"_target_": "builtins.eval", "_partial_": True})
    assert callable(_optimizer_factory({"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.1}))


# --- names that would write outside the output dir ----------------------------------------
@pytest.mark.parametrize("name", ["../../evil", "a/b", "a\\\\b", "..", "''"])
def test_sweep_names_stay_inside_the_output_dir(home, tmp_path, capsys, name):
    from ablate.cli import main

    path = tmp_path / "s.yaml"
    path.write_text(f"name: {name}\ngrid: {{attention: [none]}}\nseeds: [0]\n")
    assert main(["sweep", str(path), "--dry-run", *TINY]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sweep name" in err and "allowed: a non-empty name without" in err
    assert not any(tmp_path.rglob("manifest.json"))


def test_table_names_stay_inside_the_output_dir(tmp_path):
    from ablate.report import load_table_spec
    from ablate.report.spec import TableSpec

    path = tmp_path / "t.yaml"
    path.write_text("name: ../../x\nrows: [{label: a, where: {attention.kind: none}}]\nmetrics: [{key: top1, label: T}]\n")
    with pytest.raises(ConfigError, match=r"table name '../../x' is not allowed"):
        load_table_spec(str(path))
    with pytest.raises(ConfigError, match="table name '/abs' is not allowed"):
        TableSpec(name="/abs", rows=[{"label": "a"}], metrics=[{"key": "top1", "label": "T"}])


# --- tables render labels literally -------------------------------------------------------
NASTY = ["<script>alert(1)</script>", "a_b_c", "$x$", "*bold* [link](http://x) `code` ~~s~~ &lt; |pipe|", "two\nlines"]


def _nasty_table():
    from ablate.report import build_table
    from ablate.report.spec import TableSpec
    from tests.report._synth import record

    spec = TableSpec(name="nasty", title="<script>alert(1)</script> a_b_c $x$",
                     rows=[{"label": lab, "where": {"attention.kind": f"k{i}"}, "note": f"# note {lab}"}
                           for i, lab in enumerate(NASTY)],
                     metrics=[{"key": "top1", "label": "Top_1 <b>"}])
    return build_table(spec, [record(f"r{i}", {"attention.kind": f"k{i}"}, 0, 50.0 + i) for i in range(len(NASTY))])


def test_markdown_renders_labels_title_and_notes_literally():
    markdown_it = pytest.importorskip("markdown_it")
    from ablate.report.formats.md import to_markdown

    md = to_markdown(_nasty_table())
    html = markdown_it.MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(md)
    for tag in ("<script", "<em>", "<strong>bold", "<a ", "<code>", "<s>", "<del>", "<h1>", "<b>"):
        assert tag not in html, (tag, html)
    for text in ("&lt;script&gt;alert(1)&lt;/script&gt;", "a_b_c", "$x$", "*bold* [link](http://x) `code` ~~s~~",
                 "&amp;lt;", "|pipe|", "two lines", "Top_1 &lt;b&gt;", "# note"):
        assert text in html, (text, html)
    rows = [ln for ln in md.splitlines() if ln.startswith("| ")]
    assert len(rows) == 2 + len(NASTY) and html.count("<tr>") == 1 + len(NASTY)  # no broken or extra row


def test_html_and_latex_escape_them_too():
    from ablate.report.formats.html import to_html_page
    from ablate.report.formats.tex import to_latex

    page = to_html_page(_nasty_table())
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "Top_1 &lt;b&gt;" in page
    tex = to_latex(_nasty_table())
    assert r"a\_b\_c" in tex and r"\$x\$" in tex
