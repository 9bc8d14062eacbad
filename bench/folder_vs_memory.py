"""A run on a 24x24 PNG image folder against the same images in memory (an ``.npz``).

    flock /tmp/ablate-bench.lock .venv/bin/python bench/folder_vs_memory.py [--rounds 3] [--n-train 3000]

The images are the small-scale recipe's (``alignment``, 24x24 grayscale), written once as
``train/<class>/*.png`` + ``val/<class>/*.png`` and as ``data=arrays`` ``.npz``. Each
measurement is a fresh ``ablate train`` process (what each run of a sweep is under
``launcher=parallel``), one thread, ``attention=ca``; it reports the run's ``seconds`` from
``result.json`` (data, model, training, latency: what a sweep waits for) and its median epoch
``seconds`` from ``metrics.jsonl``. Variants:

- ``memory``: ``data=arrays`` (the reference);
- ``folder cached``: ``data=imagefolder``, a later run: the decoded cache is there;
- ``folder first``: the first run of a sweep: decodes every PNG and writes the cache;
- ``folder no cache``: ``data.cache_dir=null``: decodes every PNG in every run (before the cache);
- ``folder streamed``: ``data.in_memory=false``: PNGs decoded every epoch by 2 loader workers,
  started once per run (data too large for memory).

Rounds interleave the variants; the table gives medians and ratios to ``memory``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN = ["attention=ca", "tracking=disabled", "trainer.threads=1", "trainer.latency_repeats=1",
       "trainer.checkpoint=false", "data.batch_size=64", "data.augment=false"]
VARIANTS = ("memory", "folder cached", "folder first", "folder no cache", "folder streamed")


def write_data(tmp: Path, n_train: int, n_val: int) -> tuple[Path, Path]:
    """The alignment images as a PNG folder and as an .npz (same bytes, same order)."""
    import numpy as np
    from PIL import Image

    from ablate.data import load_dataset

    b = load_dataset("alignment", root=str(tmp / "gen"), n_train=n_train, n_val=n_val)
    folder = tmp / "folder"
    arrays = {}
    for split, ds in (("train", b.train), ("val", b.val)):
        x, y = ds.images.numpy(), ds.labels.numpy()
        order = np.argsort(y, kind="stable")  # folder scan order: class, then file name
        x, y = x[order], y[order]
        for c in b.class_names:
            (folder / split / c).mkdir(parents=True, exist_ok=True)
        for i, (img, label) in enumerate(zip(x, y)):
            pixels = img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)
            Image.fromarray(pixels).save(folder / split / b.class_names[label] / f"{i:06d}.png")
        arrays[split] = (x, y)
    npz = tmp / "data.npz"
    np.savez(npz, x=arrays["train"][0], y=arrays["train"][1], x_val=arrays["val"][0], y_val=arrays["val"][1],
             class_names=np.array(b.class_names))
    return folder, npz


def measure(variant: str, folder: Path, npz: Path, work: Path, epochs: int) -> tuple[float, float, float]:
    """(run seconds from result.json, median epoch seconds, process wall seconds) of one fresh run."""
    images = ["data=imagefolder", f"data.root={folder}", "data.in_chans=1"]  # the recipe's images are grayscale
    data = {"memory": ["data=arrays", f"data.path={npz}"],
            "folder cached": images,
            "folder first": [*images, f"data.cache_dir={work / 'cold'}"],
            "folder no cache": [*images, "data.cache_dir=null"],
            "folder streamed": [*images, "data.in_memory=false", "data.num_workers=2"]}[variant]
    runs = work / "runs"
    env = {**os.environ, "ABLATE_HOME": str(work), "ABLATE_PROJECT": str(ROOT), "WANDB_MODE": "disabled",
           "ABLATE_PROGRESS": "plain"}
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "ablate", "train", *RUN, *data, f"trainer.epochs={epochs}",
                          f"paths.runs_dir={runs}"], env=env, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"{variant}: exit {out.returncode}\n{out.stderr[-2000:]}")
    (result,) = [json.loads(p.read_text()) for p in runs.glob("*/result.json")]
    assert result["status"] == "completed", result
    rows = [json.loads(line) for p in runs.glob("*/metrics.jsonl") for line in p.read_text().splitlines()]
    shutil.rmtree(runs)  # the next measurement trains again, never skips
    shutil.rmtree(work / "cold", ignore_errors=True)  # "folder first" finds no cache every time
    return result["seconds"], statistics.median(r["seconds"] for r in rows), wall


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--n-train", type=int, default=3000)
    p.add_argument("--n-val", type=int, default=1000)
    args = p.parse_args()
    os.environ["ABLATE_PROJECT"] = str(ROOT)
    results: dict[str, list[tuple[float, float, float]]] = {v: [] for v in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        folder, npz = write_data(Path(tmp), args.n_train, args.n_val)
        work = Path(tmp) / "work"
        measure("folder first", folder, npz, work, 1)  # warm-up: imports, page cache
        measure("folder cached", folder, npz, work, 1)  # writes the cache the "cached" variant reads
        t0 = time.time()
        for r in range(args.rounds):
            for v in VARIANTS:
                results[v].append(measure(v, folder, npz, work, args.epochs))
                run_s, epoch_s, wall = results[v][-1]
                print(f"round {r + 1} {v:16s} run {run_s:6.2f}s  epoch {epoch_s:6.2f}s  process {wall:6.2f}s",
                      flush=True)
    print(f"\n{args.n_train}+{args.n_val} PNGs 24x24, {args.epochs} epochs, {args.rounds} rounds, "
          f"{time.time() - t0:.0f}s; load average (1 min) {os.getloadavg()[0]:.1f}")
    med = {v: [statistics.median(x[i] for x in results[v]) for i in range(3)] for v in VARIANTS}
    print(f"{'variant':16s} {'run s':>7s} {'x memory':>9s} {'epoch s':>8s} {'x memory':>9s} {'process s':>10s}")
    for v in VARIANTS:
        run_s, epoch_s, wall = med[v]
        print(f"{v:16s} {run_s:7.2f} {run_s / med['memory'][0]:9.2f} {epoch_s:8.2f} {epoch_s / med['memory'][1]:9.2f} "
              f"{wall:10.2f}")


if __name__ == "__main__":
    main()
