//! The recorder's profiling mode: one timestamped record per dispatch, labelled by kernel, in
//! recording order; nothing recorded when off; the summary adds them up per family.

use ferrograd_device::gpu::ProfileSummary;
use ferrograd_device::kernels::elementwise::{unary, UnaryOp};
use ferrograd_device::kernels::matmul::{matmul_using, Precision, Variant};
use ferrograd_device::testing::{gpu, Rng};
use ferrograd_device::{Array, DeviceError};

#[test]
fn profiling_times_each_dispatch_with_its_label() {
    let g = gpu();
    let ctx = g.gpu_context().unwrap().clone();
    let mut rng = Rng::new(21);
    let a = Array::from_f32(&g, &rng.vec(6 * 25), &[6, 25]).unwrap();
    let b = Array::from_f32(&g, &rng.vec(2 * 25 * 30), &[2, 25, 30]).unwrap();
    if !ctx.caps().timestamps {
        let e = ctx.set_profiling(true).unwrap_err();
        assert!(matches!(e, DeviceError::Unsupported { .. }), "{e}");
        return;
    }
    let record = || {
        let c = matmul_using(&a, &b, false, false, Precision::F32, Some(Variant::Tile64)).unwrap();
        unary(UnaryOp::Relu, &c).unwrap()
    };
    record();
    assert!(ctx.take_profile().unwrap().is_empty(), "records while profiling is off");

    ctx.set_profiling(true).unwrap();
    let y = record();
    let records = ctx.take_profile().unwrap();
    ctx.set_profiling(false).unwrap();
    // testing::gpu() poisons every output with a fill dispatch first; the relu of 180 values
    // runs four per thread
    let labels: Vec<&str> = records.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(labels, ["fill::fill", "matmul::tile64", "fill::fill", "elementwise::unary4"]);
    for r in &records {
        assert!(r.end_ns >= r.start_ns, "{r:?}");
    }
    assert!(records.windows(2).all(|w| w[1].start_ns >= w[0].start_ns), "{records:?}");
    // the results are unchanged by profiling
    let want = record().to_f64_vec().unwrap();
    assert_eq!(y.to_f64_vec().unwrap(), want);

    let s = ProfileSummary::of(&records);
    let families: Vec<&str> = s.families.iter().map(|l| l.name.as_str()).collect();
    assert!(families.contains(&"matmul") && families.contains(&"elementwise"), "{families:?}");
    let sum: f64 = records.iter().map(|r| r.ms()).sum();
    assert!((s.busy_ms - sum).abs() <= 1e-9 * sum.max(1.0));
    assert!(s.span_ms >= records[0].ms() && (0.0..=1.0).contains(&s.idle_share()));
}
