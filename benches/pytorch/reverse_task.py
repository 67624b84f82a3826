#!/usr/bin/env python3
"""The reverse task of `ferrograd train --dataset reverse`, in PyTorch, to tell how many steps a
model of the same size needs (accuracy, not speed).

Digits 0-9 are tokens 3..12 (PAD 0, BOS 1, EOS 2, 14 tokens); the target is the source
reversed, then EOS; teacher forcing; greedy decoding for exact match on 200 fresh examples
every --every steps. Models: `attn`, a GRU encoder-decoder (embedding 32, hidden 64) with
additive attention and Luong's tanh(W [context; h]) output, as ferrograd's `seq2seq-attn`;
`transformer`, torch.nn.Transformer (d 64, 4 heads, 1+1 layers, feed-forward 128, no dropout,
sinusoidal positions, embeddings drawn from N(0, 1/d) and scaled by sqrt(d)), as ferrograd's
`transformer`; `--torch-embedding-init` keeps nn.Embedding's N(0, 1), which drowns the
positions. Adam, constant or (`--cosine`) annealed to 0 along a cosine as ferrograd's tasks
do; gradient norm clipped at 1.

usage: python3 benches/pytorch/reverse_task.py [--model attn|transformer] [--length 20]
           [--steps 1500] [--lr 3e-3] [--every 250] [--torch-embedding-init] [--cosine]
needs: torch
"""
import argparse
import math
import time

import torch
import torch.nn as nn

VOCAB, BOS, EOS, DIGIT0 = 14, 1, 2, 3


class Positions(nn.Module):
    def __init__(self, d, n=128):
        super().__init__()
        pos = torch.arange(n)[:, None]
        div = torch.exp(torch.arange(0, d, 2) * (-math.log(10000.0) / d))
        pe = torch.zeros(n, d)
        pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * div), torch.cos(pos * div)
        self.register_buffer("pe", pe)

    def forward(self, x):
        return x + self.pe[: x.shape[1]]


class TransformerModel(nn.Module):
    def __init__(self, d=64, torch_embedding_init=False):
        super().__init__()
        self.d, self.src, self.tgt, self.pos = d, nn.Embedding(VOCAB, d), nn.Embedding(VOCAB, d), Positions(d)
        if not torch_embedding_init:
            nn.init.normal_(self.src.weight, 0.0, d**-0.5)
            nn.init.normal_(self.tgt.weight, 0.0, d**-0.5)
        self.t = nn.Transformer(d, 4, 1, 1, 128, 0.0, batch_first=True)
        self.out = nn.Linear(d, VOCAB)

    def forward(self, src, tgt):
        mask = self.t.generate_square_subsequent_mask(tgt.shape[1])
        scale = math.sqrt(self.d)
        return self.out(self.t(self.pos(self.src(src) * scale), self.pos(self.tgt(tgt) * scale), tgt_mask=mask))


class AttentionSeq2Seq(nn.Module):
    def __init__(self, hidden=64, embed=32):
        super().__init__()
        self.src, self.tgt = nn.Embedding(VOCAB, embed), nn.Embedding(VOCAB, embed)
        self.encoder, self.decoder = nn.GRU(embed, hidden, batch_first=True), nn.GRU(embed, hidden, batch_first=True)
        self.query_proj, self.key_proj = nn.Linear(hidden, hidden, bias=False), nn.Linear(hidden, hidden)
        self.v, self.combine = nn.Linear(hidden, 1, bias=False), nn.Linear(2 * hidden, hidden, bias=False)
        self.out = nn.Linear(hidden, VOCAB)

    def forward(self, src, tgt):
        memory, state = self.encoder(self.src(src))
        dec, _ = self.decoder(self.tgt(tgt), state)
        scores = self.v(torch.tanh(self.query_proj(dec)[:, :, None] + self.key_proj(memory)[:, None])).squeeze(-1)
        context = scores.softmax(-1) @ memory
        return self.out(torch.tanh(self.combine(torch.cat([context, dec], -1))))


def batch(n, length):
    src = torch.randint(0, 10, (n, length)) + DIGIT0
    rev = src.flip(1)
    tgt_in = torch.cat([torch.full((n, 1), BOS), rev], 1)
    tgt_out = torch.cat([rev, torch.full((n, 1), EOS)], 1)
    return src, tgt_in, tgt_out


@torch.no_grad()
def exact_match(model, length, n=200):
    src, _, tgt_out = batch(n, length)
    tokens = torch.full((n, 1), BOS)
    for _ in range(length + 1):
        tokens = torch.cat([tokens, model(src, tokens)[:, -1].argmax(-1, keepdim=True)], 1)
    return (tokens[:, 1:] == tgt_out).all(1).float().mean().item()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=["attn", "transformer"], default="attn")
    p.add_argument("--length", type=int, default=20)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--every", type=int, default=250)
    p.add_argument("--torch-embedding-init", action="store_true")
    p.add_argument("--cosine", action="store_true", help="anneal the rate to 0 along a cosine (ferrograd's tasks do)")
    args = p.parse_args()
    torch.manual_seed(0)
    model = TransformerModel(torch_embedding_init=args.torch_embedding_init) if args.model == "transformer" else AttentionSeq2Seq()
    opt = torch.optim.Adam(model.parameters(), args.lr)
    cosine = lambda step: 0.5 * (1 + math.cos(math.pi * step / args.steps)) if args.cosine else 1.0
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, cosine)
    start = time.time()
    for step in range(1, args.steps + 1):
        src, tgt_in, tgt_out = batch(64, args.length)
        loss = nn.functional.cross_entropy(model(src, tgt_in).reshape(-1, VOCAB), tgt_out.reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        schedule.step()
        if step % args.every == 0:
            em = exact_match(model, args.length)
            print(f"{args.model} step {step}: loss {loss.item():.3f}, exact match {em * 100:.1f}%, {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
