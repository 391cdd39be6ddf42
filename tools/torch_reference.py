#!/usr/bin/python3
"""Reference files for `genc verify`, written from PyTorch modules.

A genc net names its layers <net>.<kind><k> (generator.dense1, .conv2d1,
.conv2d_transpose1, .batchnorm1, counted per kind, in order) and a head's
layers <net>.<head>.<kind><k>; `genc compile` lists every parameter in the
generated header. PyTorch names layers by attribute or Sequential index, so
you map one to the other:

    import torch, torch.nn as nn
    from torch_reference import write_reference

    G = nn.Sequential(nn.Linear(100, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                      nn.Linear(128, 784), nn.Sigmoid())
    D = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                      nn.Linear(128, 1))
    write_reference("mlp_gan_ref.safetensors", batch=4, nets={
        "generator": (G, {"0": "dense1", "2": "dense2", "4": "dense3"}, torch.randn(4, 100)),
        "discriminator": (D, {"1": "dense1", "3": "dense2", "5": "dense3"}, torch.rand(4, 1, 28, 28)),
    })

then `genc verify models/mlp_gan.lua --reference mlp_gan_ref.safetensors`.
Every parameter of the model must be in the file. Linear and Conv weights
keep PyTorch's layouts (genc uses them); BatchNorm's weight and bias become
gamma and beta, its running statistics state/...; num_batches_tracked is
dropped. Outputs are computed in eval mode (genc's forwards are inference
mode) and reshaped to what the net returns when you pass `reshape`.

Conventions your PyTorch model must share for outputs to agree (genc follows
Keras where the two differ): "same" padding puts the odd unit after
(bottom/right); a transposed conv with "same" crops its extra row at the
bottom; batchnorm eps is genc's layer option (default 1e-3).
"""
import json
import struct

import numpy as np

SAMPLE = 4096


def write_safetensors(path, tensors, metadata):
    """F32 tensors (torch or numpy) and string metadata."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        a = t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)
        a = np.ascontiguousarray(a.astype(np.float32))
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        blobs.append(a.tobytes())
        offset += a.nbytes
    header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def store_sampled(tensors, metadata, name, t):
    """Stores t under name, or every k-th element of it (k in metadata
    sampled:<name>) when it has more than SAMPLE elements."""
    flat = t.detach().reshape(-1)
    if flat.numel() > SAMPLE:
        k = -(-flat.numel() // SAMPLE)
        metadata["sampled:" + name] = k
        tensors[name] = flat[::k].clone()
    else:
        tensors[name] = t.detach().clone()


def genc_parameters(net, module, layers):
    """{'param/<genc name>': tensor, 'state/<genc name>': tensor} from a
    module's state_dict and a map from PyTorch layer names to genc's."""
    out = {}
    renamed = {"weight": "weight", "bias": "bias"}
    for key, value in module.state_dict().items():
        layer, _, field = key.rpartition(".")
        if field == "num_batches_tracked":
            continue
        if layer not in layers:
            raise KeyError(f"{net}: no genc name for PyTorch layer '{layer}' (in {key})")
        genc = f"{net}.{layers[layer]}"
        is_bn = "batchnorm" in layers[layer]
        if field in ("running_mean", "running_var"):
            out[f"state/{genc}.{field}"] = value
        else:
            field = {"weight": "gamma", "bias": "beta"}[field] if is_bn else renamed[field]
            out[f"param/{genc}.{field}"] = value
    return out


def write_reference(path, nets, batch, reshape=None):
    """nets: {genc net name: (module, {pytorch layer: genc layer}, input batch)}.
    reshape: {net: shape} for outputs the genc net reshapes (per sample)."""
    import torch
    tensors, metadata = {}, {"batch": batch}
    for net, (module, layers, x) in nets.items():
        tensors.update(genc_parameters(net, module, layers))
        module.eval()
        with torch.no_grad():
            y = module(x)
        tensors[f"input/{net}"] = x
        if isinstance(y, dict):
            for head, v in y.items():
                tensors[f"output/{net}/{head}"] = v
        else:
            if reshape and net in reshape:
                y = y.reshape(batch, *reshape[net])
            tensors[f"output/{net}"] = y
    write_safetensors(path, tensors, metadata)


if __name__ == "__main__":
    print(__doc__)
