// Fused recurrent cells (tanh RNN, LSTM, GRU) with PyTorch's gate order: one launch computes
// every gate of one time step from the two matmul results xw = x_t W_ih^T and hw = h_{t-1} W_hh^T,
// and one launch per step computes the gate gradients. One invocation per (batch row, hidden unit).
//
// Layouts (row-major, H = hidden size): LSTM pre-activations [B, 4H] as i, f, g, o; GRU [B, 3H]
// as r, z, n; GRU saved state [B, 4H] as r, z, n, hw_n + b_hn.
// Keep in step with crates/device/src/kernels/rnn.rs and its `reference` module.

struct Params {
    n: u32,  // B * H invocations
    h: u32,  // hidden size
}
@group(0) @binding(0) var<uniform> P: Params;

fn linear_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

fn sigmoid(x: f32) -> f32 {
    return 1.0 / (1.0 + exp(-x));
}

// ---- tanh RNN: h = tanh(xw + b_ih + hw + b_hh) ----

@group(0) @binding(1) var<storage, read> rf_xw: array<f32>;
@group(0) @binding(2) var<storage, read> rf_hw: array<f32>;
@group(0) @binding(3) var<storage, read> rf_bih: array<f32>;
@group(0) @binding(4) var<storage, read> rf_bhh: array<f32>;
@group(0) @binding(5) var<storage, read_write> rf_h: array<f32>;

@compute @workgroup_size(256)
fn rnn_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= P.n) {
        return;
    }
    let j = i % P.h;
    rf_h[i] = tanh(rf_xw[i] + rf_bih[j] + rf_hw[i] + rf_bhh[j]);
}

@group(0) @binding(1) var<storage, read> rb_h: array<f32>;
@group(0) @binding(2) var<storage, read> rb_gh: array<f32>;
@group(0) @binding(3) var<storage, read_write> rb_ga: array<f32>;

@compute @workgroup_size(256)
fn rnn_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= P.n) {
        return;
    }
    let h = rb_h[i];
    rb_ga[i] = rb_gh[i] * (1.0 - h * h);
}

// ---- LSTM: c = f * c_prev + i * g, h = o * tanh(c) ----

@group(0) @binding(1) var<storage, read> lf_xw: array<f32>;
@group(0) @binding(2) var<storage, read> lf_hw: array<f32>;
@group(0) @binding(3) var<storage, read> lf_bih: array<f32>;
@group(0) @binding(4) var<storage, read> lf_bhh: array<f32>;
@group(0) @binding(5) var<storage, read> lf_cprev: array<f32>;
@group(0) @binding(6) var<storage, read_write> lf_h: array<f32>;
@group(0) @binding(7) var<storage, read_write> lf_c: array<f32>;
@group(0) @binding(8) var<storage, read_write> lf_gates: array<f32>;

fn lstm_pre(row: u32, k: u32) -> f32 {
    return lf_xw[row + k] + lf_bih[k] + lf_hw[row + k] + lf_bhh[k];
}

@compute @workgroup_size(256)
fn lstm_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = linear_index(gid, nwg);
    if (idx >= P.n) {
        return;
    }
    let H = P.h;
    let b = idx / H;
    let j = idx % H;
    let row = b * 4u * H;
    let i = sigmoid(lstm_pre(row, j));
    let f = sigmoid(lstm_pre(row, H + j));
    let g = tanh(lstm_pre(row, 2u * H + j));
    let o = sigmoid(lstm_pre(row, 3u * H + j));
    let c = f * lf_cprev[idx] + i * g;
    lf_c[idx] = c;
    lf_h[idx] = o * tanh(c);
    lf_gates[row + j] = i;
    lf_gates[row + H + j] = f;
    lf_gates[row + 2u * H + j] = g;
    lf_gates[row + 3u * H + j] = o;
}

@group(0) @binding(1) var<storage, read> lb_gates: array<f32>;
@group(0) @binding(2) var<storage, read> lb_cprev: array<f32>;
@group(0) @binding(3) var<storage, read> lb_c: array<f32>;
@group(0) @binding(4) var<storage, read> lb_gh: array<f32>;
@group(0) @binding(5) var<storage, read> lb_gc: array<f32>;
@group(0) @binding(6) var<storage, read_write> lb_ga: array<f32>;
@group(0) @binding(7) var<storage, read_write> lb_gcprev: array<f32>;

@compute @workgroup_size(256)
fn lstm_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = linear_index(gid, nwg);
    if (idx >= P.n) {
        return;
    }
    let H = P.h;
    let b = idx / H;
    let j = idx % H;
    let row = b * 4u * H;
    let i = lb_gates[row + j];
    let f = lb_gates[row + H + j];
    let g = lb_gates[row + 2u * H + j];
    let o = lb_gates[row + 3u * H + j];
    let tc = tanh(lb_c[idx]);
    let gh = lb_gh[idx];
    // total gradient reaching c_t: from h_t through tanh, plus the one carried from t+1
    let dc = lb_gc[idx] + gh * o * (1.0 - tc * tc);
    lb_ga[row + j] = dc * g * i * (1.0 - i);
    lb_ga[row + H + j] = dc * lb_cprev[idx] * f * (1.0 - f);
    lb_ga[row + 2u * H + j] = dc * i * (1.0 - g * g);
    lb_ga[row + 3u * H + j] = gh * tc * o * (1.0 - o);
    lb_gcprev[idx] = dc * f;
}

// ---- GRU: n = tanh(xw_n + b_in + r * (hw_n + b_hn)), h = (1 - z) * n + z * h_prev ----

@group(0) @binding(1) var<storage, read> gf_xw: array<f32>;
@group(0) @binding(2) var<storage, read> gf_hw: array<f32>;
@group(0) @binding(3) var<storage, read> gf_bih: array<f32>;
@group(0) @binding(4) var<storage, read> gf_bhh: array<f32>;
@group(0) @binding(5) var<storage, read> gf_hprev: array<f32>;
@group(0) @binding(6) var<storage, read_write> gf_h: array<f32>;
@group(0) @binding(7) var<storage, read_write> gf_saved: array<f32>;

@compute @workgroup_size(256)
fn gru_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = linear_index(gid, nwg);
    if (idx >= P.n) {
        return;
    }
    let H = P.h;
    let b = idx / H;
    let j = idx % H;
    let row = b * 3u * H;
    let r = sigmoid(gf_xw[row + j] + gf_bih[j] + gf_hw[row + j] + gf_bhh[j]);
    let z = sigmoid(gf_xw[row + H + j] + gf_bih[H + j] + gf_hw[row + H + j] + gf_bhh[H + j]);
    let hn = gf_hw[row + 2u * H + j] + gf_bhh[2u * H + j];
    let n = tanh(gf_xw[row + 2u * H + j] + gf_bih[2u * H + j] + r * hn);
    gf_h[idx] = (1.0 - z) * n + z * gf_hprev[idx];
    let srow = b * 4u * H;
    gf_saved[srow + j] = r;
    gf_saved[srow + H + j] = z;
    gf_saved[srow + 2u * H + j] = n;
    gf_saved[srow + 3u * H + j] = hn;
}

@group(0) @binding(1) var<storage, read> gb_saved: array<f32>;
@group(0) @binding(2) var<storage, read> gb_hprev: array<f32>;
@group(0) @binding(3) var<storage, read> gb_gh: array<f32>;
@group(0) @binding(4) var<storage, read_write> gb_gx: array<f32>;
@group(0) @binding(5) var<storage, read_write> gb_ghw: array<f32>;
@group(0) @binding(6) var<storage, read_write> gb_ghprev: array<f32>;

@compute @workgroup_size(256)
fn gru_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = linear_index(gid, nwg);
    if (idx >= P.n) {
        return;
    }
    let H = P.h;
    let b = idx / H;
    let j = idx % H;
    let srow = b * 4u * H;
    let r = gb_saved[srow + j];
    let z = gb_saved[srow + H + j];
    let n = gb_saved[srow + 2u * H + j];
    let hn = gb_saved[srow + 3u * H + j];
    let gh = gb_gh[idx];
    let dan = gh * (1.0 - z) * (1.0 - n * n);
    let daz = gh * (gb_hprev[idx] - n) * z * (1.0 - z);
    let dar = dan * hn * r * (1.0 - r);
    let row = b * 3u * H;
    gb_gx[row + j] = dar;
    gb_gx[row + H + j] = daz;
    gb_gx[row + 2u * H + j] = dan;
    gb_ghw[row + j] = dar;
    gb_ghw[row + H + j] = daz;
    // the reset gate scales the recurrent side of the candidate
    gb_ghw[row + 2u * H + j] = dan * r;
    gb_ghprev[idx] = gh * z;
}
