"""Framework tax: ``ablate train`` against the same training in a bare PyTorch loop.

    .venv/bin/python bench/bare_loop.py [--rounds 5] [--runs 3] [--attention ca] [--device cpu]
                                        [--skip-epochs] [--skip-overhead]

The main job's recipe (conf/ defaults + sweeps/branches.yaml: the alignment task,
mobilenet_v2_tiny, AdamW, warm-up + cosine, label smoothing, channels_last, crop + flip,
3 epochs of 3k images, one thread per run), measured three ways:

1. **Epoch time**, in this process, interleaved rounds (bare, ablate, then ablate, bare, ...):
   ablate's ``fit`` (its loaders, checkpoint and metrics files, per-epoch evaluation) against a
   plain loop written here: the same model from the registry, the same uint8 tensors, the same
   augmentation, optimiser and schedule, evaluation every epoch, no files. Both draw the same
   random numbers in the same order, so they must end with the same numbers (checked: a ratio
   between two different computations would mean nothing). Printed: seconds per epoch of
   each, the ratio ablate / bare per round, its median, and the ratio of the fastest rounds.
2. **Per-run overhead of an ``ablate train`` process** (W&B offline, the data cache warm, a new
   seed each time so nothing is skipped): process wall minus training (``fit``, less the W&B
   logging inside it). Each process times its parts by wrapping the functions ``ablate train``
   calls, looked up where the run looks them up: interpreter start/exit, imports, composing the
   config (Hydra), validating it (``prepare``: model build, run key; it builds the optimiser
   once, which imports ``torch._dynamo``), the git commit, data, model, MAdds, loaders, W&B
   init, latency, the record, W&B finish; a part's first-use imports count in that part. The
   process ends as the ``ablate`` command does (exit handlers, then no interpreter teardown).
   A bare process (python, import torch, the same model and data reader, the plain loop) is
   timed too, interleaved: its wall minus training is the floor any torch script pays
   (interpreter, torch and torch._dynamo imports, torch's teardown at exit).
3. **Per-run overhead in a sweep worker**: runs one after another in one process (how the
   launchers train a sweep), run wall minus training, per part, for the runs after the first.

The machine is shared: absolute times mean little, ratios and breakdowns are the figures.
Wrap a run for a figure in ``flock /tmp/ablate-bench.lock`` so benchmarks never overlap.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

T_START = time.perf_counter()  # the child's first statement (interpreter start is before it)
ROOT = Path(__file__).resolve().parent.parent
RECIPE = ["trainer.threads=1"]  # sweeps/branches.yaml's per-run overrides (the launcher aside)


# --- the bare loop ----------------------------------------------------------------------------
def bare_fit(model, train_x, train_y, val_x, val_y, *, mean, std, seed, epochs, batch_size, lr,
             weight_decay, warmup_epochs, label_smoothing, pad, hflip, device):
    """Plain PyTorch: the recipe with nothing around it. Returns (train_loss, val_top1) per epoch."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    torch.set_flush_denormal(True)
    torch.manual_seed(seed)
    model.to(device).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps = math.ceil(len(train_x) / batch_size)  # the last batch may be smaller
    total, warm = epochs * steps, int(warmup_epochs * steps)

    def schedule(step):
        if warm and step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    std_t = torch.tensor(std).view(1, -1, 1, 1)
    scale, shift = 1.0 / (255.0 * std_t), -torch.tensor(mean).view(1, -1, 1, 1) / std_t
    n, _, h, w = train_x.shape
    history = []
    for epoch in range(epochs):
        state = np.random.SeedSequence([seed, epoch, 0]).generate_state(2, np.uint32)
        gen = torch.Generator().manual_seed((int(state[0]) << 31) ^ int(state[1]))
        order = torch.randperm(n, generator=gen)
        model.train()
        losses, sizes = [], []
        for b in range(steps):
            idx = order[b * batch_size:(b + 1) * batch_size]
            x, y = train_x[idx], train_y[idx]
            m = len(idx)
            padded = F.pad(x, (pad, pad, pad, pad))  # random crop from the zero-padded image
            oy = torch.randint(0, 2 * pad + 1, (m,), generator=gen)
            ox = torch.randint(0, 2 * pad + 1, (m,), generator=gen)
            rows = (oy[:, None] + torch.arange(h))[:, :, None]
            cols = (ox[:, None] + torch.arange(w))[:, None, :]
            x = padded[torch.arange(m)[:, None, None], :, rows, cols].permute(0, 3, 1, 2)
            if hflip:
                x = torch.where((torch.rand(m, generator=gen) < 0.5)[:, None, None, None], x.flip(3), x)
            x = torch.addcmul(shift, x.contiguous().float(), scale)
            x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(model(x), y.to(device, non_blocking=True), label_smoothing=label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.detach())
            sizes.append(m)
        losses = torch.stack(losses).tolist()  # one host read per epoch
        if not all(map(math.isfinite, losses)):
            raise FloatingPointError(f"bare loop diverged in epoch {epoch}")
        model.eval()
        hits = torch.zeros((), dtype=torch.int64, device=device)
        with torch.no_grad():
            for lo in range(0, len(val_x), batch_size):
                x = torch.addcmul(shift, val_x[lo:lo + batch_size].float(), scale)
                x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
                hits += (model(x).argmax(1) == val_y[lo:lo + batch_size].to(device)).sum()
        history.append((sum(v * k for v, k in zip(losses, sizes)) / n, 100.0 * hits.item() / len(val_x)))
    return history


# --- 1. epoch time -------------------------------------------------------------------------------
def bench_epochs(rounds: int, attention: str, device: str) -> None:
    import torch

    from ablate.config import compose
    from ablate.data import load_dataset, make_loader
    from ablate.models import create_model
    from ablate.train.engine import fit
    from ablate.train.run import _optimizer_factory, prepare

    plan = prepare(compose([*RECIPE, f"attention={attention}", "tracking=disabled", f"trainer.device={device}"]))
    torch.set_num_threads(plan.trainer.threads)
    dev = plan.trainer.torch_device()
    bundle = load_dataset(plan.data_name, root=plan.data_root, **plan.data_kwargs)
    lk = plan.loader_kwargs
    tx, ty = bundle.train.images, bundle.train.labels
    vx, vy = bundle.val.images, bundle.val.labels
    if lk.get("drop_last") or lk.get("num_workers"):
        raise SystemExit("the bare loop keeps the last partial batch and reads memory: drop_last and num_workers off")

    def model():
        torch.manual_seed(plan.seed)
        return create_model(plan.model_name, num_classes=bundle.num_classes, in_chans=bundle.in_chans,
                            attention=plan.attention, **plan.model_kwargs)

    def run_bare():
        t = plan.trainer
        return bare_fit(model(), tx, ty, vx, vy, mean=bundle.mean, std=bundle.std, seed=plan.seed,
                        epochs=t.epochs, batch_size=lk["batch_size"], lr=plan.optim["lr"],
                        weight_decay=plan.optim["weight_decay"], warmup_epochs=t.warmup_epochs,
                        label_smoothing=t.label_smoothing, pad=lk["pad"], hflip=lk["hflip"], device=dev)

    def run_ablate(tmp: Path, r: int):
        from ablate.track.store import RunDirStore

        loader = {"augment": True, **lk, "seed": plan.seed, "mean": bundle.mean, "std": bundle.std}
        train = make_loader(bundle.train, shuffle=True, **loader)
        val = make_loader(bundle.val, shuffle=False, **{**loader, "augment": False, "drop_last": False})
        files = RunDirStore(tmp).files(f"{plan.key}-{r}")
        files.create(plan.config)
        result = fit(model(), train, val, _optimizer_factory(plan.optim), plan.trainer, files=files,
                     seed=plan.seed, log=lambda _: None, console=None)
        return [(row["train_loss"], row["val_top1"]) for row in result.history]

    print(f"epoch time: {plan.model_name} + {attention}, {len(tx)} train / {len(vx)} val images, "
          f"batch {lk['batch_size']}, {plan.trainer.epochs} epochs, {plan.trainer.threads} thread(s), {dev}")
    ratios, cpu_ratios, per_epoch = [], [], {"bare": [], "ablate": []}
    with tempfile.TemporaryDirectory() as tmp:
        run_bare()  # warm-up: first-call costs (oneDNN kernels, allocator) belong to neither side
        for r in range(rounds):
            order = ("bare", "ablate") if r % 2 == 0 else ("ablate", "bare")
            secs, cpu, hist = {}, {}, {}
            for side in order:
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                t0, c0 = time.perf_counter(), time.process_time()
                hist[side] = run_bare() if side == "bare" else run_ablate(Path(tmp), r)
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                secs[side] = (time.perf_counter() - t0) / plan.trainer.epochs
                cpu[side] = time.process_time() - c0
                per_epoch[side].append(secs[side])
            same = all(math.isclose(a[0], b[0], rel_tol=1e-6) and a[1] == b[1]
                       for a, b in zip(hist["bare"], hist["ablate"]))
            if not same:
                raise SystemExit(f"the two loops computed different things: bare {hist['bare']} vs ablate {hist['ablate']}")
            ratios.append(secs["ablate"] / secs["bare"])
            cpu_ratios.append(cpu["ablate"] / cpu["bare"])
            print(f"  round {r + 1}: bare {secs['bare']:.3f} s/epoch, ablate {secs['ablate']:.3f} s/epoch, "
                  f"ratio {ratios[-1]:.3f}, CPU time ratio {cpu_ratios[-1]:.3f}  (same losses and top-1: "
                  f"{hist['ablate'][-1][1]:.1f} %)")
    print(f"  median: bare {statistics.median(per_epoch['bare']):.3f} s/epoch, ablate "
          f"{statistics.median(per_epoch['ablate']):.3f} s/epoch, ratio ablate/bare {statistics.median(ratios):.3f}"
          f" (rounds: {', '.join(f'{x:.3f}' for x in ratios)})")
    fastest = {k: min(v) for k, v in per_epoch.items()}
    print(f"  fastest round of each (least disturbed by other load): bare {fastest['bare']:.3f}, ablate "
          f"{fastest['ablate']:.3f} s/epoch, ratio {fastest['ablate'] / fastest['bare']:.3f}")
    if dev.type == "cpu":  # CPU time of this process: what waiting for a core does not inflate
        print(f"  CPU time ratio ablate/bare, median: {statistics.median(cpu_ratios):.3f}")


# --- 2. per-run overhead ---------------------------------------------------------------------------
# (label, module, attribute): what ``ablate train`` calls, wrapped where the run looks it up.
# A missing attribute (another version of the tree) is skipped. "Inner" parts run inside
# training (fit) and are framework time, not training: they are taken out of its window.
PARTS = [
    ("compose config (Hydra)", "ablate.config", "compose"),
    ("validate (prepare: model build, run key)", "ablate.train.run", "prepare"),
    ("git commit", "ablate.train.run", "git_commit"),
    ("load data (cache)", "ablate.data", "load_dataset"),
    ("build model", "ablate.models", "create_model"),
    ("MAdds", "ablate.models", "count_madds"),
    ("loaders", "ablate.data", "make_loader"),
    ("W&B init", "ablate.track.wandb_mirror", "WandbMirror.__init__"),
    ("training (fit)", "ablate.train.engine", "fit"),
    ("W&B log (per epoch)", "ablate.track.wandb_mirror", "WandbMirror.log"),
    ("latency", "ablate.models.complexity", "measure_latency"),
    ("write record", "ablate.track.store", "RunDirStore.put"),
    ("W&B summary + finish", "ablate.track.wandb_mirror", "WandbMirror.summary"),
    ("W&B summary + finish", "ablate.track.wandb_mirror", "WandbMirror.finish"),
]
INNER = {"W&B log (per epoch)"}
RUN_PARTS = list(dict.fromkeys(label for label, _, _ in PARTS[2:] if label != "training (fit)"))


def install_timers(times: dict) -> None:
    """Wrap every part of PARTS: its wall time adds up in ``times[label]`` (the dict is read at
    call time, so a caller can swap its contents). A call nested in another timed part (the model
    built inside prepare) counts in the outer part only; inner parts count inside fit too."""
    import importlib

    depth = [0]

    def timed(label, fn):
        inner = label in INNER

        def wrapper(*args, **kwargs):
            outer = depth[0]
            depth[0] += not inner
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                depth[0] = outer
                dt = time.perf_counter() - t0
                times[label + " cpu"] = times.get(label + " cpu", 0.0) + time.process_time() - c0
                if inner or outer == 0:
                    times[label] = times.get(label, 0.0) + dt
                if inner and outer > 0:  # inside fit: not training
                    times["_inner_in_fit"] = times.get("_inner_in_fit", 0.0) + dt
        return wrapper

    owners = {module: importlib.import_module(module) for _, module, _ in PARTS}
    for label, module, attr in PARTS:
        owner = owners[module]
        *path, name = attr.split(".")
        try:
            for p in path:
                owner = getattr(owner, p)
            setattr(owner, name, timed(label, getattr(owner, name)))
        except AttributeError:
            continue


def _training(times: dict) -> dict:
    times["training"] = times.get("training (fit)", 0.0) - times.pop("_inner_in_fit", 0.0)
    return times


def child(argv: list[str], out: Path) -> int:
    """One ``ablate train`` process with its parts timed; writes the times to ``out``."""
    times: dict[str, float] = {}
    t_import = time.perf_counter()
    import ablate.cli
    times["import ablate.cli"] = time.perf_counter() - t_import
    t_import = time.perf_counter()
    install_timers(times)
    times["import torch, ablate's run modules"] = time.perf_counter() - t_import
    t_main = time.perf_counter()
    rc = ablate.cli.main(["train", *argv])
    times["main"] = time.perf_counter() - t_main
    times["child"] = time.perf_counter() - T_START
    out.write_text(json.dumps(_training(times)))
    return rc


def worker(argv: list[str], out: Path, seeds: list[int]) -> int:
    """Runs one after another in one process, as a sweep's workers train them: each run's parts."""
    times: dict[str, float] = {}
    install_timers(times)
    from ablate.config import compose
    from ablate.train.run import prepare, run

    plans = [prepare(compose([*argv, f"seed={seed}"])) for seed in seeds]  # a sweep plans in its parent
    rows = []
    for plan in plans:
        times.clear()
        t0 = time.perf_counter()
        status = run(plan)["status"]
        times["run"] = time.perf_counter() - t0
        if status != "completed":
            raise SystemExit(f"run {plan.key}: {status}")
        rows.append(dict(_training(times)))
    out.write_text(json.dumps(rows))
    return 0


def bench_overhead(runs: int, attention: str, device: str) -> None:
    env = {**os.environ, "ABLATE_PROJECT": str(ROOT), "ABLATE_PROGRESS": "plain", "WANDB_MODE": "offline",
           "PYTHONPATH": str(ROOT)}  # this tree's ablate, whichever one is installed
    common = [*RECIPE, f"attention={attention}", "tracking=offline", f"trainer.device={device}"]
    rows, cli, bare = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        env["ABLATE_HOME"] = os.environ["ABLATE_HOME"] = tmp
        py = [sys.executable, str(Path(__file__).resolve())]
        spec = Path(tmp) / "bare.json"
        spec.write_text(json.dumps(bare_spec(attention, device)))  # also warms the data cache
        # warm-up: the OS file cache, W&B's first start on this machine
        subprocess.run([*py, "--child", str(Path(tmp) / "warm.json"), *common, "seed=1000"],
                       env=env, check=True, capture_output=True)
        for i in range(runs):  # interleaved: timed ablate, plain ablate CLI, bare process
            out = Path(tmp) / f"t{i}.json"
            t0, c0 = time.perf_counter(), _children_cpu()
            subprocess.run([*py, "--child", str(out), *common, f"seed={2000 + i}"], env=env, check=True,
                           capture_output=True)
            rows.append({**json.loads(out.read_text()), "wall": time.perf_counter() - t0, "cpu": _children_cpu() - c0})
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "ablate", "train", *common, f"seed={3000 + i}"], env=env,
                           check=True, capture_output=True)
            cli.append(time.perf_counter() - t0)
            t0, c0 = time.perf_counter(), _children_cpu()
            res = subprocess.run([*py, "--bare-child", str(spec)], env=env, check=True, capture_output=True, text=True)
            words = res.stdout.split()
            bare.append({"wall": time.perf_counter() - t0, "training": float(words[-1]), "cpu": _children_cpu() - c0,
                         "training_cpu": float(words[-3])})
        # a sweep worker: one process, runs one after another (the first pays first-use costs)
        out = Path(tmp) / "worker.json"
        subprocess.run([*py, "--worker", str(out), ",".join(str(4000 + i) for i in range(runs + 1)), *common],
                       env=env, check=True, capture_output=True)
        in_worker = json.loads(out.read_text())

    for r in rows:
        r["overhead"] = r["wall"] - r["training"]
        r["overhead_cpu"] = r["cpu"] - r["training (fit) cpu"]
    for b in bare:
        b["overhead"] = b["wall"] - b["training"]
        b["overhead_cpu"] = b["cpu"] - b["training_cpu"]
    overheads = sorted(r["overhead"] for r in rows)
    r = sorted(rows, key=lambda r: r["overhead"])[len(rows) // 2]  # the median run's breakdown
    print(f"per-run overhead: `ablate train` processes (W&B offline), {runs} runs: "
          f"{', '.join(f'{o:.3f}' for o in overheads)} s; the median run:")
    labels = ["import ablate.cli", "import torch, ablate's run modules"] + [label for label, _, _ in PARTS[:2]]
    labels += RUN_PARTS
    parts = [("interpreter start + exit", r["wall"] - r["child"])] + [(k, r.get(k, 0.0)) for k in labels]
    shown = sum(v for _, v in parts)
    parts.append(("other (CLI, lock, run dir, record fields, logging)", r["overhead"] - shown))
    for label, v in parts:
        print(f"  {label:52s} {v:6.3f} s")
    print(f"  {'= overhead (wall - training)':52s} {r['overhead']:6.3f} s   (training {r['training']:.3f} s, "
          f"wall {r['wall']:.3f} s)")
    med_b = statistics.median(b["overhead"] for b in bare)
    print(f"  bare process (python, import torch, the model and data reader, plain loop): wall - training "
          f"{med_b:.3f} s (median; training {statistics.median(b['training'] for b in bare):.3f} s)")
    print(f"  ablate's own overhead (median ablate - median bare): {statistics.median(overheads) - med_b:.3f} s")
    oc_a, oc_b = statistics.median(r["overhead_cpu"] for r in rows), statistics.median(b["overhead_cpu"] for b in bare)
    print(f"  in CPU seconds (all threads and child processes, W&B's service included; steadier under load than "
          f"wall): ablate {oc_a:.3f} s, bare {oc_b:.3f} s, ablate's own {oc_a - oc_b:.3f} s")
    tr_a, tr_b = statistics.median(r["training"] for r in rows), statistics.median(b["training"] for b in bare)
    print(f"  training in these processes, median: ablate {tr_a:.3f} s, bare {tr_b:.3f} s, ratio {tr_a / tr_b:.3f}")
    print(f"  wall, median: ablate (timed) {statistics.median(r['wall'] for r in rows):.3f} s, plain `python -m "
          f"ablate train` {statistics.median(cli):.3f} s (minus the timed runs' training: "
          f"{statistics.median(cli) - tr_a:.3f} s), bare {statistics.median(b['wall'] for b in bare):.3f} s")
    later = in_worker[1:]
    for w in in_worker:
        w["overhead"] = w["run"] - w["training"]
    print(f"per-run overhead in a sweep worker (one process, {len(in_worker)} runs one after another; the first "
          f"{in_worker[0]['overhead']:.3f} s pays first-use costs), later runs: "
          f"{', '.join(format(w['overhead'], '.3f') for w in later)} s; medians:")
    for label in RUN_PARTS:
        print(f"  {label:52s} {statistics.median(w.get(label, 0.0) for w in later):6.3f} s")
    print(f"  {'= overhead (run wall - training)':52s} {statistics.median(w['overhead'] for w in later):6.3f} s   "
          f"(training {statistics.median(w['training'] for w in later):.3f} s)")


def _children_cpu() -> float:
    """User + system CPU seconds of this process's finished children (and theirs)."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def bare_spec(attention: str, device: str) -> dict:
    """What a bare process needs to train the same run, as plain values (no config system)."""
    from ablate.config import compose
    from ablate.train.run import prepare

    plan = prepare(compose([*RECIPE, f"attention={attention}", "tracking=disabled", f"trainer.device={device}"]))
    t, lk = plan.trainer, plan.loader_kwargs
    return {"model": plan.model_name, "model_kwargs": plan.model_kwargs, "attention": plan.attention,
            "data": plan.data_name, "root": plan.data_root, "data_kwargs": plan.data_kwargs,
            "threads": t.threads, "device": str(t.torch_device()), "seed": plan.seed,
            "fit": {"epochs": t.epochs, "batch_size": lk["batch_size"], "lr": plan.optim["lr"],
                    "weight_decay": plan.optim["weight_decay"], "warmup_epochs": t.warmup_epochs,
                    "label_smoothing": t.label_smoothing, "pad": lk["pad"], "hflip": lk["hflip"]}}


def bare_child(spec_file: str) -> None:
    """A bare process: import torch, the model and the data's reader (the cache is warm), train."""
    import torch

    from ablate.data import load_dataset
    from ablate.models import create_model

    spec = json.loads(Path(spec_file).read_text())
    torch.set_num_threads(spec["threads"])
    b = load_dataset(spec["data"], root=spec["root"], **spec["data_kwargs"])
    torch.manual_seed(spec["seed"])
    model = create_model(spec["model"], num_classes=b.num_classes, in_chans=b.in_chans, attention=spec["attention"],
                         **spec["model_kwargs"])
    # torch's first optimiser imports torch._dynamo (~1 s): an import, not training (ablate pays
    # it while validating the optimiser, before its training window opens)
    torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))])
    t0, c0 = time.perf_counter(), time.process_time()
    bare_fit(model, b.train.images, b.train.labels, b.val.images, b.val.labels, mean=b.mean, std=b.std,
             seed=spec["seed"], device=torch.device(spec["device"]), **spec["fit"])
    print(f"train_cpu_seconds {time.process_time() - c0:.4f}")
    print(f"train_seconds {time.perf_counter() - t0:.4f}")


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        import ablate.cli

        ablate.cli.exit_fast(child(sys.argv[3:], Path(sys.argv[2])))  # ends as the `ablate` command does
    if len(sys.argv) > 3 and sys.argv[1] == "--worker":
        sys.exit(worker(sys.argv[4:], Path(sys.argv[2]), [int(x) for x in sys.argv[3].split(",")]))
    if len(sys.argv) > 1 and sys.argv[1] == "--bare-child":
        bare_child(sys.argv[2])
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5, help="interleaved epoch-time rounds (3 epochs each side)")
    p.add_argument("--runs", type=int, default=3, help="`ablate train` processes for the overhead")
    p.add_argument("--attention", default="ca", help="the branches sweep's setting to train (default: ca)")
    p.add_argument("--device", default="cpu", help="trainer.device (cpu, cuda)")
    p.add_argument("--skip-epochs", action="store_true")
    p.add_argument("--skip-overhead", action="store_true")
    args = p.parse_args()
    sys.path.insert(0, str(ROOT))
    os.environ["ABLATE_PROJECT"] = str(ROOT)
    if not args.skip_epochs:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["ABLATE_HOME"] = tmp
            bench_epochs(args.rounds, args.attention, args.device)
    if not args.skip_overhead:
        bench_overhead(args.runs, args.attention, args.device)


if __name__ == "__main__":
    main()
