#!/usr/bin/env python3
"""An independent float64 reference for Llama-architecture GGUF files with F32 weights.

It shares no code with slm: its own GGUF reader, its own forward pass in numpy float64.
Used by tests/test_reference_greedy.cpp to check long greedy generations (the shared
goldens stop at 32 tokens).

    ref_forward.py MODEL.gguf N_TOKENS    prints the greedy ids after BOS, one line, space-separated
"""
import os
import struct
import sys

# One thread for numpy's BLAS: the products here are tiny, and an OpenMP OpenBLAS wakes its
# threads for each one, which costs ~100x the product itself when the cores are busy (ctest -j).
# The results are the same float64 values either way. Set before numpy is imported.
for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(variable, "1")

import numpy as np  # noqa: E402

VALUE_FORMATS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt):
        value = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return value[0]

    def string(self):
        n = self.take("<Q")
        s = self.data[self.pos:self.pos + n].decode("utf-8", "replace")
        self.pos += n
        return s

    def value(self, kind):
        if kind == 8:
            return self.string()
        if kind == 9:
            element_kind, count = self.take("<I"), self.take("<Q")
            return [self.value(element_kind) for _ in range(count)]
        return self.take(VALUE_FORMATS[kind])


def read_gguf(path):
    data = open(path, "rb").read()
    r = Reader(data)
    assert data[:4] == b"GGUF"
    r.pos = 4
    r.take("<I")  # version
    n_tensors, n_kv = r.take("<Q"), r.take("<Q")
    meta = {}
    for _ in range(n_kv):
        key = r.string()
        meta[key] = r.value(r.take("<I"))
    infos = []
    for _ in range(n_tensors):
        name = r.string()
        dims = [r.take("<Q") for _ in range(r.take("<I"))]
        kind, offset = r.take("<I"), r.take("<Q")
        assert kind == 0, f"{name}: only F32 tensors are supported by this reference"
        infos.append((name, dims, offset))
    alignment = meta.get("general.alignment", 32)
    start = (r.pos + alignment - 1) // alignment * alignment
    tensors = {}
    for name, dims, offset in infos:
        count = int(np.prod(dims))
        array = np.frombuffer(data, dtype="<f4", count=count, offset=start + offset).astype(np.float64)
        tensors[name] = array.reshape(list(reversed(dims)))  # ggml's ne[0] is the fastest axis
    return meta, tensors


def rms_norm(x, weight, eps):
    return x / np.sqrt(np.mean(x * x) + eps) * weight


def main():
    path, n_tokens = sys.argv[1], int(sys.argv[2])
    meta, t = read_gguf(path)
    arch = meta["general.architecture"]
    assert arch == "llama", "this reference runs the llama architecture"
    n_layer = meta["llama.block_count"]
    n_head = meta["llama.attention.head_count"]
    n_head_kv = meta.get("llama.attention.head_count_kv", n_head)
    n_embd = meta["llama.embedding_length"]
    head_dim = n_embd // n_head
    eps = meta["llama.attention.layer_norm_rms_epsilon"]
    base = meta.get("llama.rope.freq_base", 10000.0)
    bos = meta["tokenizer.ggml.bos_token_id"]
    output = t.get("output.weight", t["token_embd.weight"])
    inv_freq = base ** (-np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)

    def rope(v, pos):  # pairs (2i, 2i+1) of each head, as GGUF llama files expect
        v = v.reshape(-1, head_dim // 2, 2)
        c, s = np.cos(pos * inv_freq), np.sin(pos * inv_freq)
        x0, x1 = v[..., 0], v[..., 1]
        return np.stack([x0 * c - x1 * s, x0 * s + x1 * c], axis=-1).reshape(-1)

    keys = [[] for _ in range(n_layer)]
    values = [[] for _ in range(n_layer)]
    token, generated = bos, []
    for pos in range(n_tokens):
        x = t["token_embd.weight"][token].copy()
        for layer in range(n_layer):
            p = f"blk.{layer}."
            h = rms_norm(x, t[p + "attn_norm.weight"], eps)
            q = rope(t[p + "attn_q.weight"] @ h, pos).reshape(n_head, head_dim)
            keys[layer].append(rope(t[p + "attn_k.weight"] @ h, pos).reshape(n_head_kv, head_dim))
            values[layer].append((t[p + "attn_v.weight"] @ h).reshape(n_head_kv, head_dim))
            K, V = np.stack(keys[layer]), np.stack(values[layer])  # [pos+1, n_head_kv, head_dim]
            out = np.empty((n_head, head_dim))
            for head in range(n_head):
                kv = head // (n_head // n_head_kv)
                scores = K[:, kv, :] @ q[head] / np.sqrt(head_dim)
                weights = np.exp(scores - scores.max())
                out[head] = (weights / weights.sum()) @ V[:, kv, :]
            x = x + t[p + "attn_output.weight"] @ out.reshape(-1)
            h = rms_norm(x, t[p + "ffn_norm.weight"], eps)
            gate = t[p + "ffn_gate.weight"] @ h
            x = x + t[p + "ffn_down.weight"] @ (gate / (1 + np.exp(-gate)) * (t[p + "ffn_up.weight"] @ h))
        logits = output @ rms_norm(x, t["output_norm.weight"], eps)
        token = int(np.argmax(logits))  # first maximum: the lowest id on ties
        generated.append(token)
    print(" ".join(map(str, generated)))


if __name__ == "__main__":
    main()
