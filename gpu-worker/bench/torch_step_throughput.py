"""Python side of `agora-worker bench throughput`: the same models, initial weights, samples and
optimizer as the Rust trainer, timed with PyTorch from Python on the same libtorch and thread
count. The Rust side writes the samples (an Agora shard file) and the initial weights (a
safetensors file, parameters named as in the Rust model); this script reads both without
extra packages.

Prints one JSON object per architecture on stdout. Run by the Rust benchmark through the
project venv; not meant to be run by hand (it can be: see --help).
"""

import argparse
import json
import math
import re
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def parse_arch(arch_id):
    kind, rest = arch_id.split(":", 1)
    fields = dict(pair.split("=") for pair in rest.split(","))
    return kind, fields


class Mlp(nn.Module):
    def __init__(self, inputs, hidden, classes):
        super().__init__()
        sizes = [inputs] + hidden
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))
        self.out = nn.Linear(sizes[-1], classes)

    def forward(self, x):
        x = x.flatten(1)
        for layer in self.layers:
            x = F.relu(layer(x))
        return self.out(x)


class Cnn(nn.Module):
    def __init__(self, channels, side, conv, classes):
        super().__init__()
        chans = [channels] + conv
        self.layers = nn.ModuleList(
            nn.Conv2d(a, b, 3, padding=1) for a, b in zip(chans, chans[1:])
        )
        pooled = side >> len(conv)
        self.out = nn.Linear(chans[-1] * pooled * pooled, classes)

    def forward(self, x):
        for layer in self.layers:
            x = F.max_pool2d(F.relu(layer(x)), 2)
        return self.out(x.flatten(1))


class Block(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.ln_attention = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.attention_out = nn.Linear(width, width)
        self.ln_mlp = nn.LayerNorm(width)
        self.mlp_in = nn.Linear(width, 4 * width)
        self.mlp_out = nn.Linear(4 * width, width)

    def forward(self, x, mask):
        b, t, w = x.shape
        d = w // self.heads
        q, k, v = self.qkv(self.ln_attention(x)).split(w, 2)
        q, k, v = (z.view(b, t, self.heads, d).transpose(1, 2) for z in (q, k, v))
        scores = q.matmul(k.transpose(-2, -1)) * (1.0 / math.sqrt(d))
        att = scores.masked_fill(mask, float("-inf")).softmax(-1, dtype=torch.float32)
        y = att.matmul(v).transpose(1, 2).contiguous().view(b, t, w)
        x = x + self.attention_out(y)
        return x + self.mlp_out(F.gelu(self.mlp_in(self.ln_mlp(x))))


class Transformer(nn.Module):
    def __init__(self, vocab, ctx, width, heads, layers):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab, width)
        self.position_embedding = nn.Parameter(torch.zeros(ctx, width))
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(layers))
        self.ln_final = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab)

    def hidden(self, tokens):
        t = tokens.shape[1]
        x = self.token_embedding(tokens) + self.position_embedding[:t]
        mask = torch.ones(t, t, dtype=torch.bool, device=tokens.device).triu(1)
        for block in self.blocks:
            x = block(x, mask)
        return self.ln_final(x)

    def forward(self, tokens):
        return self.head(self.hidden(tokens))


class Gpt(Transformer):
    """The transformer with its output layer tied to the token embedding (agora's `gpt:`)."""

    def __init__(self, vocab, ctx, width, heads, layers):
        super().__init__(vocab, ctx, width, heads, layers)
        del self.head

    def forward(self, tokens):
        return self.hidden(tokens).matmul(self.token_embedding.weight.t())


def read_shard(path):
    """An Agora shard: magic, u32 LE header length, JSON header, feature bytes, label bytes."""
    raw = open(path, "rb").read()
    if raw[:8] != b"AGSHARD\x01":
        raise ValueError(f"{path} is not an Agora shard")
    header_len = int.from_bytes(raw[8:12], "little")
    header = json.loads(raw[12 : 12 + header_len])
    count = header["num_samples"]
    body = bytearray(raw[12 + header_len :])
    all_bytes = torch.frombuffer(body, dtype=torch.uint8)
    # Images carry one label byte per sample after the features; token windows none.
    label_len = count if "image" in header["kind"] else 0
    features = all_bytes[: len(body) - label_len].view(count, -1)
    labels = all_bytes[len(body) - label_len :]
    return header, features, labels


def read_safetensors(path):
    """The f32 tensors of a safetensors file: u64 LE header length, JSON header, data."""
    raw = open(path, "rb").read()
    header_len = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + header_len])
    data = bytearray(raw[8 + header_len :])
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            raise ValueError(f"{name}: dtype {info['dtype']}, expected F32")
        start, end = info["data_offsets"]
        tensors[name] = torch.frombuffer(data[start:end], dtype=torch.float32).view(info["shape"])
    return tensors


def python_name(rust_name):
    """Rust's `fc0.weight`, `conv1.bias`, `block0.qkv.weight` as this module names them."""
    name = re.sub(r"^(fc|conv)(\d+)\.", r"layers.\2.", rust_name)
    return re.sub(r"^block(\d+)\.", r"blocks.\1.", name)


def build(arch_id):
    kind, f = parse_arch(arch_id)
    ints = lambda key: [int(v) for v in f[key].split("-")]
    if kind == "mlp":
        return Mlp(int(f["in"]), ints("hidden"), int(f["out"])), kind
    if kind == "cnn":
        return Cnn(int(f["ch"]), int(f["side"]), ints("conv"), int(f["out"])), kind
    language = {"transformer": Transformer, "gpt": Gpt}[kind]
    return (
        language(int(f["vocab"]), int(f["ctx"]), int(f["width"]), int(f["heads"]), int(f["layers"])),
        kind,
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--shard", required=True, help="samples, written by the Rust side")
    parser.add_argument("--init", required=True, help="initial weights (safetensors)")
    parser.add_argument("--precision", default="f32", choices=["f32", "bf16"],
                        help="bf16: the forward pass under bf16 autocast, as the Rust trainer")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        # The numerics the Rust worker sets (agora_ml::device::set_reproducible_numerics).
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.use_deterministic_algorithms(True, warn_only=True)
    model, kind = build(args.arch)
    state = {python_name(name): tensor for name, tensor in read_safetensors(args.init).items()}
    model.load_state_dict(state, strict=True)
    model.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    header, data, labels = read_shard(args.shard)
    # Samples are copied to the device batch by batch from pinned host memory, as the Rust side
    # does.
    if device.type == "cuda":
        data, labels = data.pin_memory(), labels.pin_memory()
    pool = header["num_samples"]
    if kind == "cnn":
        _, f = parse_arch(args.arch)
        data = data.view(pool, int(f["ch"]), int(f["side"]), int(f["side"]))
    scale = header["pixel_scale"]
    vocab = int(parse_arch(args.arch)[1].get("vocab", 0))

    def step(i):
        idx = torch.arange(i * args.batch_size, (i + 1) * args.batch_size) % pool
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.precision == "bf16"):
            if kind in ("transformer", "gpt"):
                tokens = data[idx].to(device, non_blocking=True).long()
                logits = model(tokens[:, :-1]).reshape(-1, vocab)
                targets = tokens[:, 1:].reshape(-1)
            else:
                logits = model(data[idx].to(device, non_blocking=True).float() * scale)
                targets = labels[idx].to(device, non_blocking=True).long()
            loss = F.cross_entropy(logits, targets)
        # The Rust trainer reports each step's loss and accuracy: the same work here.
        correct = (logits.argmax(-1) == targets).sum().item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item(), correct

    for i in range(args.warmup):
        step(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for i in range(args.steps):
        step(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else 0
    print(json.dumps({
        "arch": args.arch,
        "threads": args.threads,
        "steps": args.steps,
        "seconds": seconds,
        "steps_per_second": args.steps / seconds,
        "peak_device_bytes": peak,
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
