#!/usr/bin/python3
"""The models of models/ in PyTorch, timed the way bench/run times genc.

The model definitions are the ones the reference fixtures are made with
(tests/reference/make_fixtures.py), so both sides compute the same thing:
same shapes, same losses, same optimizer settings, batch 64. Written as
PyTorch users write training loops: every parameter requires grad, each step
zeroes its optimizer's gradients, computes its loss, calls backward() and
step(); noise and dropout masks are drawn fresh each step.

    /usr/bin/python3 bench/torch_models.py THREADS [MODEL]

prints one JSON object per model: training img/s (median of 5 runs after a
warm-up) and the sample network's latency in eager mode under no_grad for
1 and 64 samples.
"""
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))
import make_fixtures as mf  # noqa: E402

BATCH = 64
BUILDERS = {"mlp_gan": mf.mlp_gan, "vae": mf.vae, "autoencoder": mf.autoencoder,
            "conv_autoencoder": mf.conv_autoencoder, "dcgan": mf.dcgan, "cgan": mf.cgan}
SAMPLE_NET = {"mlp_gan": "generator", "vae": "decoder", "dcgan": "generator", "cgan": "generator"}


def training_rate(m):
    p = {k: v.clone().requires_grad_(True) for k, v in m.params.items()}
    s = {k: v.clone() for k, v in m.state.items()}
    kind, settings = m.optimizer
    opts = {step: mf.make_optimizer(kind, settings, [p[k] for k in mf.step_params(m, step)]) for step in m.steps}
    lo, hi = getattr(m, "image_range", (0, 1))
    images = lo + (hi - lo) * torch.rand(BATCH, 1, 28, 28)
    labels = torch.randint(0, 10, (BATCH,)).float()
    masks = getattr(m, "dropout", {})

    def iteration():
        for step, (_, loss_fn) in m.steps.items():
            inputs = {"images": images, "labels": labels,
                      "dropout": [torch.rand(BATCH, *shape) for shape in masks.get(step, [])]}
            for name, shape in m.noise.items():
                inputs[name] = torch.randn(BATCH, *shape)
            opts[step].zero_grad(set_to_none=True)
            loss = loss_fn(p, s, inputs)
            loss.backward()
            opts[step].step()

    start, warm = time.perf_counter(), 0
    while warm < 3 or time.perf_counter() - start < 1.0:
        iteration()
        warm += 1
    per_iteration = (time.perf_counter() - start) / warm
    iterations = int(1.0 / per_iteration) + 1
    rates = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(iterations):
            iteration()
        rates.append(iterations * BATCH / (time.perf_counter() - t0))
    return statistics.median(rates), rates


def sample_latency(m, n):
    """Seconds per call of the sample network on n samples, best of 7 runs of 0.2 s."""
    fn, shape = m.nets[SAMPLE_NET[m.name]]
    z = torch.randn(n, 100 if m.name == "cgan" else shape[0])
    y = torch.zeros(n, dtype=torch.long)

    def call():
        with torch.no_grad():
            x = torch.cat([z, F.one_hot(y, 10).float()], 1) if m.name == "cgan" else z
            return fn(m.params, m.state, x, train=False)

    best = float("inf")
    for _ in range(7):
        calls, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < 0.2:
            call()
            calls += 1
        best = min(best, (time.perf_counter() - t0) / calls)
    return best


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    only = sys.argv[2] if len(sys.argv) > 2 else None
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    for name, build in BUILDERS.items():
        if only and name != only:
            continue
        m = build()
        rate, runs = training_rate(m)
        result = {"model": name, "threads": threads, "img_per_s": rate, "runs": runs}
        if name in SAMPLE_NET:
            result["latency_1_us"] = sample_latency(m, 1) * 1e6
            result["latency_64_us"] = sample_latency(m, 64) * 1e6
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
