#!/usr/bin/python3
"""Writes tests/golden/seq2seq.json: PyTorch references for nn/seq2seq.h (issue 16).

Cases (read by tests/nn/test_seq2seq_golden.cpp):
  cross_attention       MultiheadCrossAttention with memory padding (lengths per row)
  encoder_block_padded  TransformerBlock (non-causal) with key padding: the encoder block
  decoder_block         DecoderBlock: causal self-attention, cross-attention with padding, MLP
  seq2seq_shared_tied   a 2 + 2 layer Seq2Seq, one embedding for source, target and output
  seq2seq_separate      the same with separate embeddings and an untied output head

Each reference module mirrors Scalpel's names, so torch's state_dict keys are Scalpel's; the
layer cases record out, a cotangent r, and d<out, r>/d(x, memory, every parameter); the models
record logits, the mean cross-entropy over non-ignored targets and its gradient for every
parameter. The hand-written references are cross-checked here against torch's own
nn.MultiheadAttention (key_padding_mask), nn.TransformerEncoderLayer (src_key_padding_mask) and
nn.TransformerDecoderLayer (norm_first=True, activation="gelu", causal tgt_mask,
memory_key_padding_mask) with the weights mapped over; the script fails if they disagree.

Encoding, seeding and atomic writing are those of gen_torch_nn.py (imported).

Usage (torch 1.13; CI never runs this, the JSON is committed):
  /usr/bin/python3 tests/golden/gen_torch_seq2seq.py          # writes tests/golden/seq2seq.json
"""
import argparse
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_torch_nn as base  # noqa: E402  (helpers: randn, randomize, state_of, encode, dumps)

CASES = {}


def case(name):
    def wrap(fn):
        CASES[name] = fn
        return fn

    return wrap


def key_mask(lengths, s):
    """[B, S] True where a key is padding (position >= length)."""
    return torch.arange(s)[None, :] >= torch.tensor(lengths)[:, None]


def attention(q, k, v, causal, lengths):
    """softmax(q kᵀ / sqrt(D) + masks) v on [B, H, T, D]; padded keys and (when causal) later keys masked."""
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if causal:
        t = q.shape[-2]
        s = s.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
    if lengths is not None:
        s = s.masked_fill(key_mask(lengths, k.shape[-2])[:, None, None, :], float("-inf"))
    return torch.softmax(s, dim=-1) @ v


class SelfAttention(nn.Module):
    """nn/transformer.cpp MultiheadSelfAttention with key padding: qkv rows q | k | v, proj."""

    def __init__(self, d, heads, causal):
        super().__init__()
        self.heads, self.causal = heads, causal
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)

    def forward(self, x, lengths=None):
        b, t, d = x.shape
        qkv = self.qkv(x).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = attention(qkv[0], qkv[1], qkv[2], self.causal, lengths)
        return self.proj(att.permute(0, 2, 1, 3).reshape(b, t, d))


class CrossAttention(nn.Module):
    """nn/seq2seq.cpp MultiheadCrossAttention: q Linear(d, d), kv Linear(d, 2d) rows k | v, proj."""

    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(d, d)
        self.kv = nn.Linear(d, 2 * d)
        self.proj = nn.Linear(d, d)

    def forward(self, x, memory, lengths=None):
        b, t, d = x.shape
        s = memory.shape[1]
        q = self.q(x).reshape(b, t, self.heads, d // self.heads).permute(0, 2, 1, 3)
        kv = self.kv(memory).reshape(b, s, 2, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = attention(q, kv[0], kv[1], False, lengths)
        return self.proj(att.permute(0, 2, 1, 3).reshape(b, t, d))


class EncoderBlock(nn.Module):
    """TransformerBlock(causal=False) with key padding."""

    def __init__(self, d, heads, d_ff):
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.attn = SelfAttention(d, heads, False)
        self.ln2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, d_ff)
        self.fc2 = nn.Linear(d_ff, d)

    def forward(self, x, lengths=None):
        h = x + self.attn(self.ln1(x), lengths)
        return h + self.fc2(F.gelu(self.fc1(self.ln2(h))))


class DecoderBlock(nn.Module):
    """h = x + SelfAttn(ln1 x) (causal); h = h + CrossAttn(ln2 h, memory); y = h + MLP(ln3 h)."""

    def __init__(self, d, heads, d_ff):
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.attn = SelfAttention(d, heads, True)
        self.ln2 = nn.LayerNorm(d)
        self.cross_attn = CrossAttention(d, heads)
        self.ln3 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, d_ff)
        self.fc2 = nn.Linear(d_ff, d)

    def forward(self, x, memory, lengths=None):
        h = x + self.attn(self.ln1(x))
        h = h + self.cross_attn(self.ln2(h), memory, lengths)
        return h + self.fc2(F.gelu(self.fc1(self.ln3(h))))


class Seq2Seq(nn.Module):
    """nn/seq2seq.cpp Seq2Seq: embeddings + learned positions, encoder, enc_ln, decoder, dec_ln, head."""

    def __init__(self, vocab, enc_layers, dec_layers, heads, d, d_ff, max_len, shared, tied):
        super().__init__()
        if shared:
            self.emb = nn.Embedding(vocab, d)
        else:
            self.src_emb = nn.Embedding(vocab, d)
            self.tgt_emb = nn.Embedding(vocab, d)
        self.enc_pos = nn.Embedding(max_len, d)
        self.dec_pos = nn.Embedding(max_len, d)
        self.encoder = nn.ModuleList([EncoderBlock(d, heads, d_ff) for _ in range(enc_layers)])
        self.enc_ln = nn.LayerNorm(d)
        self.decoder = nn.ModuleList([DecoderBlock(d, heads, d_ff) for _ in range(dec_layers)])
        self.dec_ln = nn.LayerNorm(d)
        self.shared, self.tied = shared, tied
        if not tied:
            self.head = nn.Linear(d, vocab, bias=False)

    def forward(self, src, lengths, tgt_in):
        src_emb = self.emb if self.shared else self.src_emb
        tgt_emb = self.emb if self.shared else self.tgt_emb
        h = src_emb(src) + self.enc_pos(torch.arange(src.shape[1]))
        for b in self.encoder:
            h = b(h, lengths)
        memory = self.enc_ln(h)
        y = tgt_emb(tgt_in) + self.dec_pos(torch.arange(tgt_in.shape[1]))
        for b in self.decoder:
            y = b(y, memory, lengths)
        y = self.dec_ln(y)
        return y @ tgt_emb.weight.t() if self.tied else self.head(y)


# ---- cross-checks against torch's own modules ----------------------------------------------------

def copy_pairs(pairs):
    with torch.no_grad():
        for dst, src in pairs:
            dst.copy_(src)


def assert_close(a, b, what):
    err = (a - b).abs().max().item()
    assert err < 1e-5, "%s: hand-written reference disagrees with torch: max |diff| %g" % (what, err)


def check_cross_attention(m, x, memory, lengths, heads):
    d = x.shape[-1]
    ref = nn.MultiheadAttention(d, heads, batch_first=True)
    copy_pairs([(ref.in_proj_weight, torch.cat([m.q.weight, m.kv.weight])),
                (ref.in_proj_bias, torch.cat([m.q.bias, m.kv.bias])),
                (ref.out_proj.weight, m.proj.weight), (ref.out_proj.bias, m.proj.bias)])
    y, _ = ref(x, memory, memory, key_padding_mask=key_mask(lengths, memory.shape[1]), need_weights=False)
    assert_close(m(x, memory, lengths), y, "cross-attention")


def ffn_norm_pairs(ref, m, norms):
    pairs = [(ref.linear1.weight, m.fc1.weight), (ref.linear1.bias, m.fc1.bias),
             (ref.linear2.weight, m.fc2.weight), (ref.linear2.bias, m.fc2.bias)]
    for theirs, ours in norms:
        pairs += [(theirs.weight, ours.weight), (theirs.bias, ours.bias)]
    return pairs


def check_encoder_block(m, x, lengths, heads):
    d = x.shape[-1]
    ref = nn.TransformerEncoderLayer(d, heads, m.fc1.out_features, dropout=0.0, activation="gelu",
                                     batch_first=True, norm_first=True)
    ref.train()  # keeps torch off its inference fast path
    copy_pairs([(ref.self_attn.in_proj_weight, m.attn.qkv.weight), (ref.self_attn.in_proj_bias, m.attn.qkv.bias),
                (ref.self_attn.out_proj.weight, m.attn.proj.weight), (ref.self_attn.out_proj.bias, m.attn.proj.bias)]
               + ffn_norm_pairs(ref, m, [(ref.norm1, m.ln1), (ref.norm2, m.ln2)]))
    y = ref(x, src_key_padding_mask=key_mask(lengths, x.shape[1]))
    assert_close(m(x, lengths), y, "encoder block")


def check_decoder_block(m, x, memory, lengths, heads):
    d = x.shape[-1]
    ref = nn.TransformerDecoderLayer(d, heads, m.fc1.out_features, dropout=0.0, activation="gelu",
                                     batch_first=True, norm_first=True)
    ref.train()
    ca = m.cross_attn
    copy_pairs([(ref.self_attn.in_proj_weight, m.attn.qkv.weight), (ref.self_attn.in_proj_bias, m.attn.qkv.bias),
                (ref.self_attn.out_proj.weight, m.attn.proj.weight), (ref.self_attn.out_proj.bias, m.attn.proj.bias),
                (ref.multihead_attn.in_proj_weight, torch.cat([ca.q.weight, ca.kv.weight])),
                (ref.multihead_attn.in_proj_bias, torch.cat([ca.q.bias, ca.kv.bias])),
                (ref.multihead_attn.out_proj.weight, ca.proj.weight), (ref.multihead_attn.out_proj.bias, ca.proj.bias)]
               + ffn_norm_pairs(ref, m, [(ref.norm1, m.ln1), (ref.norm2, m.ln2), (ref.norm3, m.ln3)]))
    t = x.shape[1]
    y = ref(x, memory, tgt_mask=torch.ones(t, t, dtype=torch.bool).triu(1),
            memory_key_padding_mask=key_mask(lengths, memory.shape[1]))
    assert_close(m(x, memory, lengths), y, "decoder block")


# ---- cases ---------------------------------------------------------------------------------------

def layer_case(m, g, inputs, lengths, forward, meta):
    """state, inputs, out, cotangent, grad.<input> and grad.<param> of one forward/backward."""
    tensors = {}
    meta["state"] = []
    for k, v in base.state_of(m).items():
        tensors["state." + k] = v
        meta["state"].append(k)
    params = dict(m.named_parameters())
    meta["params"] = list(params.keys())
    meta["inputs"] = list(inputs.keys())
    xs = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
    tensors.update(inputs)
    tensors["lengths"] = torch.tensor(lengths, dtype=torch.int64)
    out = forward(m, xs, lengths)
    r = torch.randn(out.shape, generator=g, dtype=torch.float32)
    tensors["out"], tensors["cotangent"] = out.detach(), r
    wrt = list(xs.values()) + list(params.values())
    grads = torch.autograd.grad(out, wrt, r)
    for name, gr in zip(list(xs.keys()) + list(params.keys()), grads):
        tensors["grad." + name] = gr
    return meta, tensors


@case("cross_attention")
def _(g):
    d, heads, lengths = 8, 2, [4, 2]
    m = CrossAttention(d, heads)
    base.randomize(m, g)
    x, memory = base.randn(g, 2, 3, d), base.randn(g, 2, 4, d)
    check_cross_attention(m, x, memory, lengths, heads)
    return layer_case(m, g, {"x": x, "memory": memory}, lengths, lambda mod, i, l: mod(i["x"], i["memory"], l),
                      {"module": "MultiheadCrossAttention", "d_model": d, "heads": heads})


@case("encoder_block_padded")
def _(g):
    d, heads, d_ff, lengths = 8, 2, 16, [5, 3]
    m = EncoderBlock(d, heads, d_ff)
    base.randomize(m, g)
    x = base.randn(g, 2, 5, d)
    check_encoder_block(m, x, lengths, heads)
    return layer_case(m, g, {"x": x}, lengths, lambda mod, i, l: mod(i["x"], l),
                      {"module": "TransformerBlock", "d_model": d, "heads": heads, "d_ff": d_ff, "causal": False})


@case("decoder_block")
def _(g):
    d, heads, d_ff, lengths = 8, 2, 16, [3, 5]
    m = DecoderBlock(d, heads, d_ff)
    base.randomize(m, g)
    x, memory = base.randn(g, 2, 4, d), base.randn(g, 2, 5, d)
    check_decoder_block(m, x, memory, lengths, heads)
    return layer_case(m, g, {"x": x, "memory": memory}, lengths, lambda mod, i, l: mod(i["x"], i["memory"], l),
                      {"module": "DecoderBlock", "d_model": d, "heads": heads, "d_ff": d_ff})


def seq2seq_case(name, shared, tied):
    @case(name)
    def _(g):
        vocab, enc, dec, heads, d, d_ff, max_len = 13, 2, 2, 2, 8, 16, 8
        m = Seq2Seq(vocab, enc, dec, heads, d, d_ff, max_len, shared, tied)
        base.randomize(m, g)
        meta = {"module": "Seq2Seq", "vocab": vocab, "encoder_layers": enc, "decoder_layers": dec, "heads": heads,
                "d_model": d, "d_ff": d_ff, "max_len": max_len, "shared_embeddings": shared, "tied": tied}
        tensors = {}
        meta["state"] = []
        for k, v in base.state_of(m).items():
            tensors["state." + k] = v
            meta["state"].append(k)
        params = dict(m.named_parameters())
        meta["params"] = list(params.keys())
        lengths = [6, 4]
        src = torch.randint(0, vocab, (2, 6), generator=g)
        tgt_in = torch.randint(0, vocab, (2, 5), generator=g)
        tgt_out = torch.randint(0, vocab, (2, 5), generator=g)
        tgt_out[1, 3:] = -100  # padded targets
        logits = m(src, lengths, tgt_in)
        loss = F.cross_entropy(logits.reshape(-1, vocab), tgt_out.reshape(-1), ignore_index=-100)
        grads = torch.autograd.grad(loss, list(params.values()))
        tensors.update({"src": src, "lengths": torch.tensor(lengths), "tgt_in": tgt_in, "tgt_out": tgt_out,
                        "out": logits.detach(), "loss": loss.detach()})
        for n, gr in zip(params.keys(), grads):
            tensors["grad." + n] = gr
        return meta, tensors


seq2seq_case("seq2seq_shared_tied", True, True)
seq2seq_case("seq2seq_separate", False, False)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(here, "seq2seq.json"))
    args = ap.parse_args()
    cases = {name: base.run_case(name, fn) for name, fn in CASES.items()}
    text = base.dumps({"generator": "tests/golden/gen_torch_seq2seq.py", "torch_version": torch.__version__,
                       "cases": cases})
    json.loads(text)
    base.write_atomic(args.out, text)
    print("wrote %s: %d cases, %d bytes" % (args.out, len(cases), len(text.encode())), file=sys.stderr)


if __name__ == "__main__":
    main()
