//! The optimizer updates over many parameters per launch, as PyTorch's CUDA
//! `multi_tensor_apply` does: WGSL cannot index a list of buffers, so one launch binds up to
//! K parameters ("slots"), each as its own storage buffers, and carries a table in its
//! parameter block (per slot: element count and first workgroup); a workgroup finds its slot
//! by binary search and a `switch` on the slot picks the bindings. The update math is
//! `shaders/optim_rules.wgsl`'s; the module around it (bindings, table, switch) is generated
//! here per variant and slot count, once per process (its source leaked as `&'static str`).
//!
//! K follows the device's storage-buffer limit (`Caps::max_storage_buffers`) and the
//! bindings one slot needs, capped by the table's room ([`MAX_SLOTS`]). A parameter larger
//! than one binding takes one slot per window of it.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Mutex;

use crate::error::Result;
use crate::gpu::{grid_1d, Binding, Caps, GpuBuffer, GpuContext, Kernel, Shader, Window};
use crate::kernels::amp::FOUND_INF;
use crate::kernels::common::param_bytes;

/// Slots one launch's table holds: 48 bytes of `Params`, then 16 per slot, within
/// `MAX_PARAM_BYTES`.
pub const MAX_SLOTS: usize = 120;

const WG: usize = 256;

/// Which update rule a launch applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rule {
    Sgd,
    SgdMomentum,
    /// `device_count`: the step count lives in a device array, read (and advanced) by the kernel
    Adam {
        device_count: bool,
    },
}

/// One kernel variant: the rule, whether each slot also writes an f16 copy of the parameter,
/// and whether the launch skips everything when the scaler's found-inf is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Variant {
    pub rule: Rule,
    pub half: bool,
    pub skip: bool,
}

impl Variant {
    /// The f32 arrays of one slot, in binding order after the parameter.
    fn state_names(&self) -> &'static [&'static str] {
        match self.rule {
            Rule::Sgd => &["g"],
            Rule::SgdMomentum => &["g", "b"],
            Rule::Adam { .. } => &["g", "m", "v"],
        }
    }

    fn per_slot(&self) -> usize {
        1 + self.state_names().len() + self.half as usize
    }

    /// Buffers bound once per launch, before the slots: the scaler state, the step counts.
    fn shared(&self) -> usize {
        self.skip as usize + matches!(self.rule, Rule::Adam { device_count: true }) as usize
    }

    /// Slots per launch on a device with `caps` (at least one).
    pub fn max_slots(&self, caps: &Caps) -> usize {
        let room = (caps.max_storage_buffers as usize).saturating_sub(self.shared()) / self.per_slot();
        room.clamp(1, MAX_SLOTS)
    }

    /// The WGSL of this variant over `k` slots.
    fn source(&self, k: usize) -> String {
        let mut s = String::new();
        if self.half {
            s.push_str("enable f16;\n");
        }
        s.push_str(include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shaders/optim_rules.wgsl")));
        let _ = writeln!(s, "\n// ---- generated: {self:?}, {k} slots\n");
        let _ = writeln!(s, "const SLOTS: u32 = {k}u;\nconst FOUND_INF: u32 = {FOUND_INF}u;");
        let _ = writeln!(s, "// per slot: elements, first workgroup, step-count pair, unused");
        let _ = writeln!(s, "struct Table {{ q: Params, slots: array<vec4<u32>, {k}> }}");
        let _ = writeln!(s, "@group(0) @binding(0) var<uniform> T: Table;");
        let mut binding = 1;
        let mut bind = |s: &mut String, access: &str, name: String, ty: &str| {
            let _ = writeln!(s, "@group(0) @binding({binding}) var<storage, {access}> {name}: array<{ty}>;");
            binding += 1;
        };
        if self.skip {
            bind(&mut s, "read", "state".into(), "u32");
        }
        let device_count = matches!(self.rule, Rule::Adam { device_count: true });
        if device_count {
            bind(&mut s, "read_write", "counts".into(), "u32");
        }
        for slot in 0..k {
            bind(&mut s, "read_write", format!("p{slot}"), "f32");
            for name in self.state_names() {
                let access = if *name == "g" { "read" } else { "read_write" };
                bind(&mut s, access, format!("{name}{slot}"), "f32");
            }
            if self.half {
                bind(&mut s, "read_write", format!("h{slot}"), "f16");
            }
        }
        s.push_str(
            "
// the last slot whose first workgroup is at or before `w`
fn find_slot(w: u32) -> u32 {
    var lo = 0u;
    var hi = SLOTS - 1u;
    while (lo < hi) {
        let mid = (lo + hi + 1u) / 2u;
        if (T.slots[mid].y <= w) {
            lo = mid;
        } else {
            hi = mid - 1u;
        }
    }
    return lo;
}

@compute @workgroup_size(256)
fn update(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
          @builtin(num_workgroups) nwg: vec3<u32>) {
    let w = wid.x + wid.y * nwg.x;
    let s = find_slot(w);
    let slot = T.slots[s];
    let q = T.q;
",
        );
        let skipped = if self.skip { "state[FOUND_INF] != 0u" } else { "false" };
        let _ = writeln!(s, "    let skipped = {skipped};");
        match self.rule {
            Rule::Adam { device_count: true } => s.push_str(
                "    // each count has two cells: this step reads one and writes the other, so no
    // workgroup can see the count after the step while another still needs the one before
    let parity = select(0u, 1u, (q.flags & COUNT_PARITY) != 0u);
    let before = counts[2u * slot.z + parity];
    if (w == slot.y && lid == 0u) {
        counts[2u * slot.z + 1u - parity] = before + select(1u, 0u, skipped);
    }
    let bc = adam_bias_correction(q, before + 1u);
",
            ),
            Rule::Adam { device_count: false } => s.push_str("    let bc = vec2<f32>(q.step_size, q.bc2_sqrt);\n"),
            _ => {}
        }
        s.push_str(
            "    let i = (w - slot.y) * 256u + lid;
    if (skipped || i >= slot.x) {
        return;
    }
    switch s {
",
        );
        for k in 0..k {
            let body = match self.rule {
                Rule::Sgd => format!("let r = sgd_rule(q, p{k}[i], g{k}[i]); p{k}[i] = r;"),
                Rule::SgdMomentum => format!(
                    "let r = sgd_momentum_rule(q, p{k}[i], g{k}[i], b{k}[i]); p{k}[i] = r.x; b{k}[i] = r.y;"
                ),
                Rule::Adam { .. } => format!(
                    "let r = adam_rule(q, p{k}[i], g{k}[i], m{k}[i], v{k}[i], bc); p{k}[i] = r.x; m{k}[i] = r.y; v{k}[i] = r.z;"
                ),
            };
            let half = if self.half { format!(" h{k}[i] = f16(p{k}[i]);") } else { String::new() };
            let _ = writeln!(s, "        case {k}u: {{ {body}{half} }}");
        }
        s.push_str("        default: {}\n    }\n}\n");
        s
    }

    /// This variant's shader over `k` slots, generated and leaked once per process.
    fn shader(&self, k: usize) -> &'static Shader {
        static SHADERS: Mutex<Option<HashMap<(Variant, usize), &'static Shader>>> = Mutex::new(None);
        let mut shaders = SHADERS.lock().unwrap();
        shaders.get_or_insert_with(HashMap::new).entry((*self, k)).or_insert_with(|| {
            let name = format!(
                "optim_multi[{:?}{}{}; {k}]",
                self.rule,
                ["", " half"][self.half as usize],
                ["", " skip"][self.skip as usize]
            );
            Box::leak(Box::new(Shader {
                name: Box::leak(name.into_boxed_str()),
                source: Box::leak(self.source(k).into_boxed_str()),
                runtime_checks: true,
            }))
        })
    }
}

/// One slot: a window of one parameter's arrays (the parameter, then its rule's state in
/// `Variant::state_names` order, then the f16 copy) and the index of its step-count pair.
pub(crate) struct Slot<'a> {
    pub arrays: Vec<(&'a GpuBuffer, usize)>,
    pub window: Window,
    /// whether the window covers the whole parameter (its buffers are bound whole)
    pub whole: bool,
    pub count_pair: u32,
}

/// The slots of one parameter of `numel` elements whose arrays are `arrays` (buffer, bytes
/// per element): one per window of it.
pub(crate) fn slots_of<'a>(
    g: &GpuContext,
    numel: usize,
    arrays: Vec<(&'a GpuBuffer, usize)>,
    count_pair: u32,
) -> Vec<Slot<'a>> {
    let bytes: Vec<usize> = arrays.iter().map(|a| a.1).collect();
    let windows = g.flat_windows(numel, &bytes);
    let whole = windows.len() == 1;
    windows.into_iter().map(|window| Slot { arrays: arrays.clone(), window, whole, count_pair }).collect()
}

/// Records `variant` over `slots` in launches of up to `Variant::max_slots`; `q` is the
/// rule's parameter block (`Params`' 12 words) and `shared` the buffers bound once per launch
/// (scaler state, step counts).
pub(crate) fn launch(g: &GpuContext, variant: Variant, q: &[u32], shared: &[&GpuBuffer], slots: &[Slot]) -> Result<()> {
    debug_assert_eq!(q.len(), 12);
    debug_assert_eq!(shared.len(), variant.shared());
    for chunk in slots.chunks(variant.max_slots(g.caps())) {
        let mut block = q.to_vec();
        let mut bindings: Vec<Binding> = shared.iter().map(|&b| Binding::whole(b)).collect();
        let mut first = 0usize;
        for slot in chunk {
            block.extend([slot.window.len as u32, first as u32, slot.count_pair, 0]);
            first += slot.window.len.div_ceil(WG).max(1);
            bindings.extend(slot.arrays.iter().map(|&(b, size)| Binding::window(b, size, slot.window, slot.whole)));
        }
        let kernel = Kernel::new(variant.shader(chunk.len()), "update");
        g.dispatch_bound(&kernel, param_bytes(&block), &bindings, grid_1d(first * WG, WG as u32))?;
    }
    Ok(())
}
