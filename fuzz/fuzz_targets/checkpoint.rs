//! Safetensors checkpoints: parsed onto the CPU device, then loaded into a small model as
//! `eval` and `--resume` do; any bytes give a model or an error that leaves it unchanged.
#![no_main]

use ferrograd_device::Device;
use ferrograd_graph::nn::{Linear, Module};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(ck) = ferrograd_train::checkpoint::parse(Path::new("fuzz.safetensors"), data, &Device::Cpu) else {
        return;
    };
    let model = Linear::new(&Device::Cpu, 3, 2, true).unwrap();
    let before: Vec<Vec<f64>> = model.state_dict().iter().map(|(_, t)| t.to_vec_f64().unwrap()).collect();
    for strict in [true, false] {
        if model.load_state_dict(&ck.arrays, strict).is_err() {
            let after: Vec<Vec<f64>> = model.state_dict().iter().map(|(_, t)| t.to_vec_f64().unwrap()).collect();
            assert_eq!(before, after, "a refused load changed the model");
        }
    }
    let _ = model.load_state_dict_converting(&ck.arrays, false);
});
