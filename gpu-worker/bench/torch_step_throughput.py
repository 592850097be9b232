"""Python side of `agora-worker bench throughput`: the same models, batches and optimizer as
the Rust trainer, timed with PyTorch from Python on the same libtorch and thread count.

Prints one JSON object per architecture on stdout. Run by the Rust benchmark through the
project venv; not meant to be run by hand (it can be: see --help).
"""

import argparse
import json
import math
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
        att = scores.masked_fill(mask, float("-inf")).softmax(-1)
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

    def forward(self, tokens):
        t = tokens.shape[1]
        x = self.token_embedding(tokens) + self.position_embedding[:t]
        mask = torch.ones(t, t, dtype=torch.bool).triu(1)
        for block in self.blocks:
            x = block(x, mask)
        return self.head(self.ln_final(x))


def build(arch_id):
    kind, f = parse_arch(arch_id)
    ints = lambda key: [int(v) for v in f[key].split("-")]
    if kind == "mlp":
        return Mlp(int(f["in"]), ints("hidden"), int(f["out"])), kind
    if kind == "cnn":
        return Cnn(int(f["ch"]), int(f["side"]), ints("conv"), int(f["out"])), kind
    return (
        Transformer(int(f["vocab"]), int(f["ctx"]), int(f["width"]), int(f["heads"]), int(f["layers"])),
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
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, kind = build(args.arch)
    _, f = parse_arch(args.arch)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    # Batches are built each step from u8 storage, as the Rust trainer does.
    pool = 1024
    if kind == "transformer":
        ctx = int(f["ctx"])
        data = torch.randint(0, 128, (pool, ctx + 1), dtype=torch.uint8)
    else:
        shape = (int(f["in"]),) if kind == "mlp" else (int(f["ch"]), int(f["side"]), int(f["side"]))
        data = torch.randint(0, 256, (pool,) + shape, dtype=torch.uint8)
        labels = torch.randint(0, 10, (pool,), dtype=torch.uint8)

    def step(i):
        idx = torch.arange(i * args.batch_size, (i + 1) * args.batch_size) % pool
        if kind == "transformer":
            tokens = data[idx].long()
            logits = model(tokens[:, :-1])
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))
        else:
            x = data[idx].float() * (1.0 / 255.0)
            loss = F.cross_entropy(model(x), labels[idx].long())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    for i in range(args.warmup):
        step(i)
    start = time.perf_counter()
    for i in range(args.steps):
        step(i)
    seconds = time.perf_counter() - start
    print(json.dumps({
        "arch": args.arch,
        "threads": args.threads,
        "steps": args.steps,
        "seconds": seconds,
        "steps_per_second": args.steps / seconds,
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
