#!/usr/bin/env python3
"""Reference data for the sequence layers of ferrograd, made by PyTorch, for a parity test.

Builds torch.nn.RNN (tanh and relu), LSTM, GRU (also on padded batches through
pack_padded_sequence), MultiheadAttention, TransformerEncoderLayer and TransformerDecoderLayer
(each post-norm ReLU and pre-norm GELU) with fixed seeds, runs each on fixed random inputs and
writes one safetensors file (default crates/graph/tests/data/torch_seq_layers.safetensors, the
committed copy that the Rust test reads, so CI needs no torch) holding, per case:

  <case>.param.<name>   the layer's state_dict, PyTorch names (float32)
  <case>.input.<name>   the inputs (float32): x, h0, c0, or query/key/value and the masks
  <case>.output.<name>  the outputs (float64): out, h_n, c_n, or attn_output, attn_weights
  <case>.seed           the loss weights w (float64), same shape as the main output
  <case>.grad.<name>    gradients (float64) of  loss = sum(main_output * w)  with respect to
                        every parameter and every float input

The file's metadata maps each case to a JSON object of its constructor arguments.

How it is computed: parameters are drawn by PyTorch's own init in float32 and rounded to
float32; the forward and backward then run in float64 (`.double()`) from those float32
values, so the expected numbers are exact up to float64 rounding. The layers run in eval()
mode with dropout 0, so nothing is random after the seed.

How it is compared (crates/graph/tests/torch_seq_parity.rs, on the committed file
crates/graph/tests/data/torch_seq_layers.safetensors):
  1. build the ferrograd layer with the same arguments (ferrograd_graph::nn::recurrent::
     {Rnn, Lstm, Gru} with RecurrentConfig; nn::attention::MultiheadAttention;
     nn::transformer::TransformerEncoderLayer with TransformerLayerConfig) and call eval();
  2. `load_state_dict(<case>.param.* with the prefix removed, strict = true)` -- the names
     and shapes must match exactly, which is itself part of the parity check;
  3. run the forward on <case>.input.* (RecurrentState{h: h0, c: c0}; AttentionMasks with
     attn_mask / key_padding_mask, which are already ADDITIVE float masks here, as ferrograd
     takes them), then `(main_output * seed).sum().backward()`;
  4. compare outputs and gradients: on Device::Cpu (f64) within 1e-9 relative to each
     array's largest value (1e-6 with GELU: ferrograd's erf is the Abramowitz & Stegun
     7.1.26 formula, |error| < 1.5e-7); on a GPU (f32) within 1e-5 for outputs and 1e-4
     for gradients.
The main output is `out` for the recurrent cases (h_n/c_n are compared as values only) and
`attn_output` / `out` for attention and the Transformer layer.

usage: python3 benches/pytorch/seq_layers.py [--out PATH]
needs: torch, safetensors (pip install torch safetensors)
"""
import argparse
import json

import torch
from safetensors.torch import save_file

SEED = 1234


def make_inputs(shapes):
    """Float32 inputs, uniform in [-1, 1), from the current generator state."""
    return {name: (torch.rand(*shape) * 2 - 1).float() for name, shape in shapes.items()}


def run_case(name, module, inputs, forward, tensors, metadata, config):
    """Run `forward(module, inputs) -> dict of outputs` in float64 from float32 values, with the
    first output as the one whose weighted sum is differentiated; store everything."""
    module = module.float().eval()
    for key, value in module.state_dict().items():
        tensors[f"{name}.param.{key}"] = value.detach().clone().contiguous()
    for key, value in inputs.items():
        tensors[f"{name}.input.{key}"] = value.contiguous()

    module = module.double()
    leaves = {k: v.double().requires_grad_(not k.endswith("mask")) for k, v in inputs.items()}
    outputs = forward(module, leaves)
    main_key = next(iter(outputs))
    main = outputs[main_key]
    seed = torch.rand(main.shape, dtype=torch.float64) * 2 - 1
    (main * seed).sum().backward()

    for key, value in outputs.items():
        tensors[f"{name}.output.{key}"] = value.detach().contiguous()
    tensors[f"{name}.seed"] = seed
    for key, p in module.named_parameters():
        tensors[f"{name}.grad.{key}"] = p.grad.detach().contiguous()
    for key, v in leaves.items():
        if v.requires_grad:
            tensors[f"{name}.grad.input.{key}"] = v.grad.detach().contiguous()
    metadata[name] = json.dumps({**config, "main_output": main_key})


def recurrent_cases(tensors, metadata):
    T, B, I, H, L = 6, 3, 5, 4, 2
    for name, cls, extra in [
        ("rnn_tanh", torch.nn.RNN, {"nonlinearity": "tanh"}),
        ("rnn_relu", torch.nn.RNN, {"nonlinearity": "relu"}),
        ("lstm", torch.nn.LSTM, {}),
        ("gru", torch.nn.GRU, {}),
    ]:
        batch_first = name == "gru"
        config = dict(input_size=I, hidden_size=H, num_layers=L, bidirectional=True, batch_first=batch_first, **extra)
        torch.manual_seed(SEED)
        module = cls(**config)
        x_shape = (B, T, I) if batch_first else (T, B, I)
        shapes = {"x": x_shape, "h0": (L * 2, B, H)}
        if cls is torch.nn.LSTM:
            shapes["c0"] = (L * 2, B, H)
        inputs = make_inputs(shapes)

        def forward(m, t):
            if "c0" in t:
                out, (h_n, c_n) = m(t["x"], (t["h0"], t["c0"]))
                return {"out": out, "h_n": h_n, "c_n": c_n}
            out, h_n = m(t["x"], t["h0"])
            return {"out": out, "h_n": h_n}

        run_case(name, module, inputs, forward, tensors, metadata, {"layer": cls.__name__, **config})


def packed_cases(tensors, metadata):
    """Padded batches with per-sequence lengths, through pack_padded_sequence and back."""
    T, B, I, H, L = 6, 3, 5, 4, 2
    lengths = [4, 6, 2]
    for name, cls, batch_first in [("lstm_packed", torch.nn.LSTM, False), ("gru_packed", torch.nn.GRU, True)]:
        config = dict(input_size=I, hidden_size=H, num_layers=L, bidirectional=True, batch_first=batch_first)
        torch.manual_seed(SEED)
        module = cls(**config)
        shapes = {"x": (B, T, I) if batch_first else (T, B, I), "h0": (L * 2, B, H)}
        if cls is torch.nn.LSTM:
            shapes["c0"] = (L * 2, B, H)
        inputs = make_inputs(shapes)

        def forward(m, t, batch_first=batch_first):
            packed = torch.nn.utils.rnn.pack_padded_sequence(
                t["x"], lengths, batch_first=batch_first, enforce_sorted=False
            )
            state = (t["h0"], t["c0"]) if "c0" in t else t["h0"]
            out, last = m(packed, state)
            out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=batch_first, total_length=T)
            if "c0" in t:
                return {"out": out, "h_n": last[0], "c_n": last[1]}
            return {"out": out, "h_n": last}

        meta = {"layer": cls.__name__, **config, "lengths": lengths}
        run_case(name, module, inputs, forward, tensors, metadata, meta)


def attention_case(tensors, metadata):
    E, heads, N, Lq, S = 8, 2, 2, 5, 7
    torch.manual_seed(SEED)
    module = torch.nn.MultiheadAttention(E, heads, dropout=0.0, batch_first=True)
    inputs = make_inputs({"query": (N, Lq, E), "key": (N, S, E), "value": (N, S, E)})
    # additive float masks, as ferrograd takes them: a causal-style attn_mask and padding of
    # the last two keys of sequence 1 (-1e9 as kernels::attention::MASKED)
    inputs["attn_mask"] = torch.triu(torch.full((Lq, S), -1e9), diagonal=S - Lq + 1).float()
    pad = torch.zeros(N, S)
    pad[1, S - 2:] = -1e9
    inputs["key_padding_mask"] = pad.float()

    def forward(m, t):
        out, weights = m(t["query"], t["key"], t["value"], key_padding_mask=t["key_padding_mask"],
                         attn_mask=t["attn_mask"], need_weights=True, average_attn_weights=True)
        return {"attn_output": out, "attn_weights": weights}

    config = dict(layer="MultiheadAttention", embed_dim=E, num_heads=heads, batch_first=True, bias=True)
    run_case("mha", module, inputs, forward, tensors, metadata, config)


def encoder_layer_cases(tensors, metadata):
    d_model, nhead, ff, S, N = 8, 2, 16, 5, 3
    for name, activation, norm_first in [("encoder_post_relu", "relu", False), ("encoder_pre_gelu", "gelu", True)]:
        config = dict(d_model=d_model, nhead=nhead, dim_feedforward=ff, dropout=0.0, activation=activation,
                      norm_first=norm_first, batch_first=False)
        torch.manual_seed(SEED)
        module = torch.nn.TransformerEncoderLayer(**config)
        inputs = make_inputs({"src": (S, N, d_model)})
        inputs["src_mask"] = torch.triu(torch.full((S, S), -1e9), diagonal=1).float()

        def forward(m, t):
            return {"out": m(t["src"], src_mask=t["src_mask"])}

        run_case(name, module, inputs, forward, tensors, metadata, {"layer": "TransformerEncoderLayer", **config})


def decoder_layer_cases(tensors, metadata):
    d_model, nhead, ff, T, S, N = 8, 2, 16, 4, 5, 3
    for name, activation, norm_first in [("decoder_post_relu", "relu", False), ("decoder_pre_gelu", "gelu", True)]:
        config = dict(d_model=d_model, nhead=nhead, dim_feedforward=ff, dropout=0.0, activation=activation,
                      norm_first=norm_first, batch_first=True)
        torch.manual_seed(SEED)
        module = torch.nn.TransformerDecoderLayer(**config)
        inputs = make_inputs({"tgt": (N, T, d_model), "memory": (N, S, d_model)})
        inputs["tgt_mask"] = torch.triu(torch.full((T, T), -1e9), diagonal=1).float()
        pad = torch.zeros(N, S)
        pad[2, S - 2:] = -1e9
        inputs["memory_key_padding_mask"] = pad.float()

        def forward(m, t):
            out = m(t["tgt"], t["memory"], tgt_mask=t["tgt_mask"], memory_key_padding_mask=t["memory_key_padding_mask"])
            return {"out": out}

        run_case(name, module, inputs, forward, tensors, metadata, {"layer": "TransformerDecoderLayer", **config})


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="crates/graph/tests/data/torch_seq_layers.safetensors")
    args = parser.parse_args()
    tensors, metadata = {}, {"torch_version": torch.__version__}
    recurrent_cases(tensors, metadata)
    attention_case(tensors, metadata)
    encoder_layer_cases(tensors, metadata)
    decoder_layer_cases(tensors, metadata)
    packed_cases(tensors, metadata)
    save_file(tensors, args.out, metadata=metadata)
    print(f"wrote {len(tensors)} tensors for {len(metadata) - 1} cases to {args.out}")


if __name__ == "__main__":
    main()
