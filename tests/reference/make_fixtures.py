#!/usr/bin/python3
"""Writes the PyTorch reference fixtures under tests/reference/fixtures/.

Run with Debian's python3-torch (apt-get install python3-torch); it is needed
only to regenerate fixtures, which are committed. Nothing at build or test
time runs this script.

    /usr/bin/python3 tests/reference/make_fixtures.py

Where genc and PyTorch differ by convention, PyTorch is fed genc's choice:
Keras "same" padding is explicit F.pad (conv, pool) or a crop of the full
transposed convolution (extra row and column at the bottom/right), batchnorm
momentum is converted (PyTorch's = 1 - Keras's), and dropout uses the uniform
draws u that genc takes as inputs (kept where u >= rate, scaled by 1/(1-rate)).

File layout (the format `genc verify` reads; see the README):
  param/<name>, state/<name>          parameters and running statistics
  input/<network>, output/<network>   a net's forward in inference mode
  output/<network>/<head>             ... for nets with heads
  input/<step>/<name>                 a step's inputs: images, labels, noise by
                                      its genc name, dropout/<k> for the k-th
                                      dropout mask the step applies
  loss/<step>, grad/<step>/<param>    each step at the file's parameters and state
  state_after/<step>/<name>           the running statistics that step leaves
  after/<opt>/<n>/param/<name>, after/<opt>/<n>/state/<name>
                                      after n training iterations (every step
                                      once, in order, same inputs each time)
Tensors of more than 4096 elements under grad/, state_after/ and after/ hold
every k-th element (k in metadata "sampled:<tensor>"), to keep the files small.
Op fixtures (op_*.safetensors) hold input/<i>, param/<name>, output,
grad_output (the upstream gradient), grad/input/<i>, grad/param/<name>,
and the op's settings as metadata.
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
from torch_reference import store_sampled as sampled, write_safetensors  # noqa: E402  (one writer, one format)

OUT = os.path.join(HERE, "fixtures")
torch.set_default_dtype(torch.float32)


# ---- genc's conventions in PyTorch ------------------------------------------------

def same_pad(size, k, s):
    out = (size + s - 1) // s
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def conv2d(x, w, b, stride, same):
    if same:
        t, bo = same_pad(x.shape[2], w.shape[2], stride)
        l, r = same_pad(x.shape[3], w.shape[3], stride)
        x = F.pad(x, (l, r, t, bo))
    return F.conv2d(x, w, b, stride=stride)


def conv2d_transpose(x, w, b, stride, same):
    y = F.conv_transpose2d(x, w, b, stride=stride)
    if not same:
        return y
    k = w.shape[2]
    oh, ow = x.shape[2] * stride, x.shape[3] * stride
    total = max(k - stride, 0)
    top = total // 2
    return y[:, :, top:top + oh, top:top + ow]


def maxpool2d(x, k, stride, same):
    if same:
        t, bo = same_pad(x.shape[2], k, stride)
        l, r = same_pad(x.shape[3], k, stride)
        x = F.pad(x, (l, r, t, bo), value=-math.inf)
    return F.max_pool2d(x, k, stride)


def batchnorm(x, gamma, beta, rmean, rvar, momentum, eps, training):
    return F.batch_norm(x, rmean, rvar, gamma, beta, training=training, momentum=1 - momentum, eps=eps)


def dropout(x, u, rate):
    return x * (u >= rate).float() / (1 - rate)


def bce(p, t):
    return F.binary_cross_entropy(p, torch.full_like(p, t) if isinstance(t, (int, float)) else t)


def bce_logits(x, t):
    return F.binary_cross_entropy_with_logits(x, torch.full_like(x, t) if isinstance(t, (int, float)) else t)


def kl_normal(mean, logvar):
    return -0.5 * torch.sum(1 + logvar - mean * mean - torch.exp(logvar)) / mean.shape[0]


# ---- op fixtures ----------------------------------------------------------------------

def op_fixture(name, fn, inputs, params, meta):
    """fn(inputs, params) -> output; gradients for a fixed upstream gradient."""
    inputs = [x.clone().requires_grad_(True) for x in inputs]
    params = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    out = fn(inputs, params)
    g = torch.randn_like(out)
    if out.requires_grad:  # onehot has no gradient
        out.backward(g)
    tensors = {}
    for i, x in enumerate(inputs):
        tensors[f"input/{i}"] = x.detach()
        if x.grad is not None:
            tensors[f"grad/input/{i}"] = x.grad
    for k, v in params.items():
        tensors[f"param/{k}"] = v.detach()
        if v.grad is not None:
            tensors[f"grad/param/{k}"] = v.grad
    tensors["output"] = out.detach()
    tensors["grad_output"] = g
    write_safetensors(os.path.join(OUT, f"op_{name}.safetensors"), tensors, dict(meta, op=meta.get("op", name)))


def make_op_fixtures():
    B = 3
    r = torch.randn
    op_fixture("dense", lambda i, p: F.linear(i[0], p["weight"], p["bias"]), [r(B, 7)],
               {"weight": r(5, 7) * 0.4, "bias": r(5) * 0.1}, {"batch": B, "in": 7, "out": 5})
    for act in ["relu", "leaky_relu", "sigmoid", "tanh"]:
        f = {"relu": F.relu, "leaky_relu": lambda x: F.leaky_relu(x, 0.2), "sigmoid": torch.sigmoid,
             "tanh": torch.tanh}[act]
        op_fixture(act, lambda i, p, f=f: f(i[0]), [r(B, 11) * 2], {}, {"alpha": 0.2, "n": B * 11})
    # conv2d and its transpose: strides 1 and 2, both paddings, odd and even sizes
    convs = [("s1_same", 1, True, 7), ("s2_same", 2, True, 7), ("s2_same_even", 2, True, 8),
             ("s1_valid", 1, False, 7), ("s2_valid", 2, False, 8)]
    for tag, s, same, size in convs:
        op_fixture(f"conv2d_{tag}", lambda i, p, s=s, same=same: conv2d(i[0], p["weight"], p["bias"], s, same),
                   [r(B, 2, size, size)], {"weight": r(3, 2, 3, 3) * 0.3, "bias": r(3) * 0.1},
                   {"op": "conv2d", "batch": B, "channels": 2, "size": size, "filters": 3, "kernel": 3, "stride": s,
                    "same": int(same)})
        op_fixture(f"conv2d_transpose_{tag}",
                   lambda i, p, s=s, same=same: conv2d_transpose(i[0], p["weight"], p["bias"], s, same),
                   [r(B, 2, size, size)], {"weight": r(2, 3, 3, 3) * 0.3, "bias": r(3) * 0.1},
                   {"op": "conv2d_transpose", "batch": B, "channels": 2, "size": size, "filters": 3, "kernel": 3,
                    "stride": s, "same": int(same)})
    for tag, k, s, same, size in [("2_valid", 2, 2, False, 8), ("2_same_odd", 2, 2, True, 7), ("3_s2_valid", 3, 2, False, 9)]:
        op_fixture(f"maxpool2d_{tag}", lambda i, p, k=k, s=s, same=same: maxpool2d(i[0], k, s, same),
                   [r(B, 2, size, size)], {}, {"op": "maxpool2d", "batch": B, "channels": 2, "size": size, "kernel": k,
                                                "stride": s, "same": int(same)})
    for training in [True, False]:
        C, HW = 3, 4
        rmean, rvar = r(C) * 0.2, torch.rand(C) + 0.5
        state = {}

        def bn(i, p, training=training, rmean=rmean, rvar=rvar, state=state):
            rm, rv = rmean.clone(), rvar.clone()
            y = batchnorm(i[0], p["gamma"], p["beta"], rm, rv, 0.8, 1e-3, training)
            state["mean"], state["var"] = rm, rv
            return y
        tag = "train" if training else "inference"
        x = r(B, C, 2, 2) * 1.5 + 0.3
        # the state before and after goes in as extra params (no gradient)
        op_fixture(f"batchnorm_{tag}", bn, [x], {"gamma": torch.rand(C) + 0.5, "beta": r(C) * 0.1},
                   {"op": "batchnorm", "batch": B, "channels": C, "positions": HW, "momentum": 0.8, "eps": 1e-3,
                    "training": int(training)})
        extra = {"running_mean": rmean, "running_var": rvar, "running_mean_after": state["mean"],
                 "running_var_after": state["var"]}
        path = os.path.join(OUT, f"op_batchnorm_{tag}.safetensors")
        append_tensors(path, {f"state/{k}": v for k, v in extra.items()})
    u = torch.rand(B, 10)
    op_fixture("dropout", lambda i, p: dropout(i[0], u, 0.3), [r(B, 10)], {}, {"rate": 0.3, "n": B * 10})
    append_tensors(os.path.join(OUT, "op_dropout.safetensors"), {"state/u": u})
    # losses: against a tensor target (grads for both) and against a constant
    op_fixture("mse", lambda i, p: F.mse_loss(i[0], i[1]), [r(B, 6), r(B, 6)], {}, {"n": B * 6})
    op_fixture("bce", lambda i, p: F.binary_cross_entropy(i[0], i[1]),
               [torch.rand(B, 6) * 0.9 + 0.05, torch.rand(B, 6)], {}, {"n": B * 6})
    op_fixture("bce_logits", lambda i, p: F.binary_cross_entropy_with_logits(i[0], i[1]),
               [r(B, 6) * 3, torch.rand(B, 6)], {}, {"n": B * 6})
    op_fixture("bce_logits_const", lambda i, p: bce_logits(i[0], 1.0), [r(B, 1) * 3], {}, {"n": B, "target": 1})
    op_fixture("kl_normal", lambda i, p: kl_normal(i[0], i[1]), [r(B, 5), r(B, 5) * 0.5], {},
               {"batch": B, "latent": 5})
    op_fixture("concat", lambda i, p: torch.cat([i[0], i[1]], 1), [r(B, 4), r(B, 3)], {},
               {"batch": B, "a": 4, "b": 3})
    labels = torch.tensor([3.0, 0.0, 9.0])
    op_fixture("onehot", lambda i, p: F.one_hot(i[0].long(), 10).float(), [labels], {}, {"batch": B, "classes": 10})
    op_fixture("reshape", lambda i, p: i[0].reshape(B, 2, 3, 4), [r(B, 24)], {}, {"batch": B})


def append_tensors(path, extra):
    """Adds tensors to a written file (rewrites it)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    tensors = {}
    for k, v in header.items():
        a, b = v["data_offsets"]
        tensors[k] = torch.from_numpy(np.frombuffer(data[a:b], dtype=np.float32).reshape(v["shape"]).copy())
    tensors.update(extra)
    write_safetensors(path, tensors, meta)


# ---- models -----------------------------------------------------------------------------

class Model:
    """A model as genc compiles it: named parameters, running statistics,
    steps (loss functions of params, state and inputs) and inference forwards."""

    def __init__(self, name, batch=4):
        self.name, self.batch = name, batch
        self.params, self.state, self.nets = {}, {}, {}

    def dense(self, name, n_in, n_out, std=None):
        self.params[name + ".weight"] = glorot((n_out, n_in), n_in, n_out) if std is None else torch.randn(n_out, n_in) * std
        self.params[name + ".bias"] = torch.randn(n_out) * 0.05 if std is None else torch.zeros(n_out)

    def conv(self, name, c_in, c_out, k, transpose=False, std=None):
        shape = (c_in, c_out, k, k) if transpose else (c_out, c_in, k, k)
        fan_in, fan_out = (c_out * k * k, c_in * k * k) if transpose else (c_in * k * k, c_out * k * k)
        self.params[name + ".weight"] = glorot(shape, fan_in, fan_out) if std is None else torch.randn(*shape) * std
        self.params[name + ".bias"] = torch.randn(c_out) * 0.05 if std is None else torch.zeros(c_out)

    def bn(self, name, c):
        self.params[name + ".gamma"] = 1 + torch.randn(c) * 0.1
        self.params[name + ".beta"] = torch.randn(c) * 0.1
        self.state[name + ".running_mean"] = torch.zeros(c)
        self.state[name + ".running_var"] = torch.ones(c)


def glorot(shape, fan_in, fan_out):
    limit = math.sqrt(6 / (fan_in + fan_out))
    return (torch.rand(*shape) * 2 - 1) * limit


def lin(p, name, x):
    return F.linear(x, p[name + ".weight"], p[name + ".bias"])


def mlp_gan():
    m = Model("mlp_gan")
    for n, (i, o) in zip(["generator.dense1", "generator.dense2", "generator.dense3"], [(100, 128), (128, 128), (128, 784)]):
        m.dense(n, i, o)
    for n, (i, o) in zip(["discriminator.dense1", "discriminator.dense2", "discriminator.dense3"],
                         [(784, 128), (128, 128), (128, 1)]):
        m.dense(n, i, o)

    def G(p, s, z, train=True, u=None):
        h = F.relu(lin(p, "generator.dense1", z))
        h = F.relu(lin(p, "generator.dense2", h))
        return torch.sigmoid(lin(p, "generator.dense3", h)).reshape(-1, 1, 28, 28)

    def D(p, s, x, train=True, u=None):
        h = F.relu(lin(p, "discriminator.dense1", x.reshape(x.shape[0], -1)))
        h = F.relu(lin(p, "discriminator.dense2", h))
        return lin(p, "discriminator.dense3", h)

    m.nets = {"generator": (G, (100,)), "discriminator": (D, (1, 28, 28))}
    m.inputs = {"d": ["images", "z"], "g": ["z"]}
    m.steps = {
        "d": ("discriminator", lambda p, s, i: bce_logits(D(p, s, i["images"]), 1) + bce_logits(D(p, s, G(p, s, i["z"])), 0)),
        "g": ("generator", lambda p, s, i: bce_logits(D(p, s, G(p, s, i["z"])), 1)),
    }
    m.noise = {"z": (100,)}
    m.optimizer = ("adam", {"lr": 2e-4, "beta1": 0.5})
    return m


def vae():
    m = Model("vae")
    m.dense("encoder.dense1", 784, 128)
    m.dense("encoder.mean.dense1", 128, 20)
    m.dense("encoder.logvar.dense1", 128, 20)
    m.dense("decoder.dense1", 20, 128)
    m.dense("decoder.dense2", 128, 784)

    def E(p, s, x, train=True, u=None):
        h = F.relu(lin(p, "encoder.dense1", x.reshape(x.shape[0], -1)))
        return {"mean": lin(p, "encoder.mean.dense1", h), "logvar": lin(p, "encoder.logvar.dense1", h)}

    def Dec(p, s, z, train=True, u=None):
        h = F.relu(lin(p, "decoder.dense1", z))
        return torch.sigmoid(lin(p, "decoder.dense2", h)).reshape(-1, 1, 28, 28)

    def elbo(p, s, i):
        h = E(p, s, i["images"])
        z = h["mean"] + torch.exp(0.5 * h["logvar"]) * i["eps"]
        return 784 * bce(Dec(p, s, z), i["images"]) + kl_normal(h["mean"], h["logvar"])

    m.nets = {"encoder": (E, (1, 28, 28)), "decoder": (Dec, (20,))}
    m.inputs = {"elbo": ["images", "eps"]}
    m.steps = {"elbo": (["encoder", "decoder"], elbo)}
    m.noise = {"eps": (20,)}
    m.optimizer = ("adam", {"lr": 1e-3})
    return m


def autoencoder():
    m = Model("autoencoder")
    sizes = [(784, 128), (128, 32), (32, 128), (128, 784)]
    for k, (i, o) in enumerate(sizes):
        m.dense(f"autoencoder.dense{k + 1}", i, o)

    def AE(p, s, x, train=True, u=None):
        h = x.reshape(x.shape[0], -1)
        for k in range(3):
            h = F.relu(lin(p, f"autoencoder.dense{k + 1}", h))
        return torch.sigmoid(lin(p, "autoencoder.dense4", h)).reshape(-1, 1, 28, 28)

    m.nets = {"autoencoder": (AE, (1, 28, 28))}
    m.inputs = {"reconstruct": ["images"]}
    m.steps = {"reconstruct": ("autoencoder", lambda p, s, i: F.mse_loss(AE(p, s, i["images"]), i["images"]))}
    m.noise = {}
    m.optimizer = ("adam", {"lr": 1e-3})
    return m


def conv_autoencoder():
    m = Model("conv_autoencoder")
    m.conv("conv_autoencoder.conv2d1", 1, 16, 3)
    m.conv("conv_autoencoder.conv2d2", 16, 8, 3)
    m.conv("conv_autoencoder.conv2d_transpose1", 8, 8, 3, transpose=True)
    m.conv("conv_autoencoder.conv2d_transpose2", 8, 16, 3, transpose=True)
    m.conv("conv_autoencoder.conv2d3", 16, 1, 3)

    def AE(p, s, x, train=True, u=None):
        n = "conv_autoencoder."
        h = maxpool2d(F.relu(conv2d(x, p[n + "conv2d1.weight"], p[n + "conv2d1.bias"], 1, True)), 2, 2, True)
        h = maxpool2d(F.relu(conv2d(h, p[n + "conv2d2.weight"], p[n + "conv2d2.bias"], 1, True)), 2, 2, True)
        h = F.relu(conv2d_transpose(h, p[n + "conv2d_transpose1.weight"], p[n + "conv2d_transpose1.bias"], 2, True))
        h = F.relu(conv2d_transpose(h, p[n + "conv2d_transpose2.weight"], p[n + "conv2d_transpose2.bias"], 2, True))
        return torch.sigmoid(conv2d(h, p[n + "conv2d3.weight"], p[n + "conv2d3.bias"], 1, True))

    m.nets = {"conv_autoencoder": (AE, (1, 28, 28))}
    m.inputs = {"reconstruct": ["images"]}
    m.steps = {"reconstruct": ("conv_autoencoder", lambda p, s, i: F.mse_loss(AE(p, s, i["images"]), i["images"]))}
    m.noise = {}
    m.optimizer = ("adam", {"lr": 1e-3})
    return m


def dcgan():
    m = Model("dcgan")
    std = 0.02
    m.dense("generator.dense1", 100, 7 * 7 * 256, std=std)
    m.conv("generator.conv2d_transpose1", 256, 128, 3, transpose=True, std=std)
    m.bn("generator.batchnorm1", 128)
    m.conv("generator.conv2d_transpose2", 128, 64, 3, transpose=True, std=std)
    m.bn("generator.batchnorm2", 64)
    m.conv("generator.conv2d_transpose3", 64, 1, 3, transpose=True, std=std)
    m.conv("discriminator.conv2d1", 1, 64, 3, std=std)
    m.conv("discriminator.conv2d2", 64, 128, 3, std=std)
    m.dense("discriminator.dense1", 128 * 7 * 7, 1, std=std)
    for k in list(m.params):  # the spec keeps default zero biases and unit/zero batchnorm
        if k.endswith(".bias"):
            m.params[k] = torch.randn_like(m.params[k]) * 0.01

    def G(p, s, z, train=True, u=None):
        g = "generator."
        h = F.relu(lin(p, g + "dense1", z)).reshape(-1, 256, 7, 7)
        for k in (1, 2):
            h = conv2d_transpose(h, p[g + f"conv2d_transpose{k}.weight"], p[g + f"conv2d_transpose{k}.bias"], 2, True)
            h = F.relu(batchnorm(h, p[g + f"batchnorm{k}.gamma"], p[g + f"batchnorm{k}.beta"],
                                 s[g + f"batchnorm{k}.running_mean"], s[g + f"batchnorm{k}.running_var"], 0.8, 1e-3,
                                 train))
        return torch.tanh(conv2d_transpose(h, p[g + "conv2d_transpose3.weight"], p[g + "conv2d_transpose3.bias"], 1, True))

    def D(p, s, x, train=True, u=None):
        d = "discriminator."
        h = x
        for k in (1, 2):
            h = F.leaky_relu(conv2d(h, p[d + f"conv2d{k}.weight"], p[d + f"conv2d{k}.bias"], 2, True), 0.2)
            if train:
                h = dropout(h, u.pop(0), 0.3)
        return lin(p, d + "dense1", h.reshape(h.shape[0], -1))

    m.nets = {"generator": (G, (100,)), "discriminator": (D, (1, 28, 28))}
    m.inputs = {"d": ["images", "z"], "g": ["z"]}
    m.dropout = {"d": [(64, 14, 14), (128, 7, 7)] * 2, "g": [(64, 14, 14), (128, 7, 7)]}

    def step_d(p, s, i):
        u = list(i["dropout"])
        return bce_logits(D(p, s, i["images"], u=u), 1) + bce_logits(D(p, s, G(p, s, i["z"]), u=u), 0)

    m.steps = {"d": ("discriminator", step_d),
               "g": ("generator", lambda p, s, i: bce_logits(D(p, s, G(p, s, i["z"]), u=list(i["dropout"])), 1))}
    m.noise = {"z": (100,)}
    m.image_range = (-1, 1)
    m.optimizer = ("adam", {"lr": 2e-4, "beta1": 0.5})
    # Adam's trajectory at a tenth of the lr too: at 2e-4, ten iterations fork on rounding. Raising a quarter of
    # the generator's tanh outputs by one ulp moved 83 % of dense1's weights past the bound; at 2e-5 that change
    # and a different tanh stay within 4e-9 of each tensor's scale. (Adam moves the biases before the batchnorms,
    # whose gradients are at rounding level, by about lr whichever way rounding tips them.)
    m.adam_tenth = True
    return m


def cgan():
    m = Model("cgan")
    for n, (i, o) in zip(["generator.dense1", "generator.dense2", "generator.dense3"], [(110, 256), (256, 512), (512, 784)]):
        m.dense(n, i, o)
    for n, (i, o) in zip(["discriminator.dense1", "discriminator.dense2", "discriminator.dense3"],
                         [(794, 512), (512, 256), (256, 1)]):
        m.dense(n, i, o)

    def G(p, s, zy, train=True, u=None):
        h = F.relu(lin(p, "generator.dense1", zy))
        h = F.relu(lin(p, "generator.dense2", h))
        return torch.tanh(lin(p, "generator.dense3", h)).reshape(-1, 1, 28, 28)

    def D(p, s, xy, train=True, u=None):
        h = F.leaky_relu(lin(p, "discriminator.dense1", xy), 0.2)
        h = F.leaky_relu(lin(p, "discriminator.dense2", h), 0.2)
        return lin(p, "discriminator.dense3", h)

    def parts(p, s, i):
        y = F.one_hot(i["labels"].long(), 10).float()
        fake = G(p, s, torch.cat([i["z"], y], 1))
        return y, fake

    def step_d(p, s, i):
        y, fake = parts(p, s, i)
        real = torch.cat([i["images"].reshape(-1, 784), y], 1)
        return bce_logits(D(p, s, real), 1) + bce_logits(D(p, s, torch.cat([fake.reshape(-1, 784), y], 1)), 0)

    def step_g(p, s, i):
        y, fake = parts(p, s, i)
        return bce_logits(D(p, s, torch.cat([fake.reshape(-1, 784), y], 1)), 1)

    m.nets = {"generator": (G, (110,)), "discriminator": (D, (794,))}
    m.inputs = {"d": ["images", "labels", "z"], "g": ["labels", "z"]}
    m.steps = {"d": ("discriminator", step_d), "g": ("generator", step_g)}
    m.noise = {"z": (100,)}
    m.image_range = (-1, 1)
    m.optimizer = ("adam", {"lr": 2e-4, "beta1": 0.5})
    return m


OPTIMIZERS = {
    "sgd": {"lr": 0.01, "momentum": 0.9},
    # lr: a tenth of the model's own (set below), since RMSprop's first step is ±lr/sqrt(1-alpha) = ±10 lr;
    # larger steps make 10 iterations of DCGAN chaotic (ReLU and batch-statistics flips), in PyTorch alone too
    "rmsprop": {"lr": None, "alpha": 0.99, "eps": 1e-8},
}


def make_optimizer(kind, settings, params):
    if kind == "adam":
        return torch.optim.Adam(params, lr=settings["lr"], betas=(settings.get("beta1", 0.9), 0.999), eps=1e-8)
    if kind == "sgd":
        return torch.optim.SGD(params, lr=settings["lr"], momentum=settings["momentum"])
    return torch.optim.RMSprop(params, lr=settings["lr"], alpha=settings["alpha"], eps=settings["eps"])


def step_params(m, step):
    nets = m.steps[step][0]
    nets = nets if isinstance(nets, list) else [nets]
    return [k for k in m.params if k.split(".")[0] in nets]


def make_model_fixture(m):
    B = m.batch
    lo, hi = getattr(m, "image_range", (0, 1))
    images = lo + (hi - lo) * torch.rand(B, 1, 28, 28)
    labels = torch.randint(0, 10, (B,)).float()
    noise = {k: torch.randn(B, *shape) for k, shape in m.noise.items()}
    masks = {s: [torch.rand(B, *shape) for shape in shapes] for s, shapes in getattr(m, "dropout", {}).items()}
    tensors, meta = {}, {"model": m.name, "batch": B, "iterations": "1,10", "optimizer": m.optimizer[0]}
    for k, v in m.params.items():
        tensors["param/" + k] = v
    for k, v in m.state.items():
        tensors["state/" + k] = v

    def step_inputs(step):
        i = {"images": images, "labels": labels, **noise, "dropout": masks.get(step, [])}
        for name in m.inputs[step]:
            tensors[f"input/{step}/{name}"] = i[name]
        for k, u in enumerate(i["dropout"]):
            tensors[f"input/{step}/dropout/{k}"] = u
        return i

    # each step at the file's parameters and state
    for step, (_, loss_fn) in m.steps.items():
        p = {k: v.clone().requires_grad_(k in step_params(m, step)) for k, v in m.params.items()}
        s = {k: v.clone() for k, v in m.state.items()}
        loss = loss_fn(p, s, step_inputs(step))
        loss.backward()
        tensors[f"loss/{step}"] = loss.detach().reshape(1)
        for k in step_params(m, step):
            sampled(tensors, meta, f"grad/{step}/{k}", p[k].grad)
        for k, v in s.items():
            sampled(tensors, meta, f"state_after/{step}/{k}", v)
    # inference forwards of each net
    for net, (fn, shape) in m.nets.items():
        x = torch.randn(B, *shape) if net != "discriminator" or m.name != "cgan" else torch.randn(B, *shape)
        tensors[f"input/{net}"] = x
        with torch.no_grad():
            y = fn(m.params, m.state, x, train=False)
        if isinstance(y, dict):
            for head, v in y.items():
                tensors[f"output/{net}/{head}"] = v
        else:
            tensors[f"output/{net}"] = y
    # training trajectories: every step once per iteration, in order
    for kind in [m.optimizer[0], "sgd", "rmsprop"]:
        settings = m.optimizer[1] if kind == m.optimizer[0] else dict(OPTIMIZERS[kind])
        if kind == "rmsprop":
            settings["lr"] = m.optimizer[1]["lr"] / 10
        if kind == "adam" and getattr(m, "adam_tenth", False):
            settings = dict(settings, lr=settings["lr"] / 10)
        meta[f"optimizer:{kind}"] = ",".join(f"{k}={v}" for k, v in settings.items())
        p = {k: v.clone().requires_grad_(True) for k, v in m.params.items()}
        s = {k: v.clone() for k, v in m.state.items()}
        opts = {step: make_optimizer(kind, settings, [p[k] for k in step_params(m, step)]) for step in m.steps}
        for it in range(1, 11):
            for step, (_, loss_fn) in m.steps.items():
                for v in p.values():
                    v.grad = None
                loss = loss_fn(p, s, step_inputs(step))
                loss.backward()
                opts[step].step()
                if it in (1, 10):
                    tensors[f"after/{kind}/{it}/loss/{step}"] = loss.detach().reshape(1)
            if it in (1, 10):
                for k, v in p.items():
                    sampled(tensors, meta, f"after/{kind}/{it}/param/{k}", v)
                for k, v in s.items():
                    sampled(tensors, meta, f"after/{kind}/{it}/state/{k}", v)
    write_safetensors(os.path.join(OUT, f"model_{m.name}.safetensors"), tensors, meta)


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(20261122)
    make_op_fixtures()
    for build in [mlp_gan, vae, autoencoder, conv_autoencoder, dcgan, cgan]:
        torch.manual_seed(7)
        make_model_fixture(build())
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} fixtures, {total / 2**20:.1f} MiB, to {OUT}")


if __name__ == "__main__":
    main()
