//! The recorder batches dispatches and waits only when the host reads; the pool reuses
//! buffers, and uploads do not grow it. One test function per binary, so no other test's work shows in the counters.

use ferrograd_device::kernels::elementwise::{binary, unary, BinaryOp, UnaryOp};
use ferrograd_device::testing::gpu;
use ferrograd_device::Array;

#[test]
fn recording_waits_only_on_read_and_the_pool_reuses_buffers() {
    dispatches_are_batched_until_a_read();
    freed_buffers_are_reused_from_the_pool();
    uploads_do_not_grow_the_pool();
}

fn dispatches_are_batched_until_a_read() {
    let g = gpu();
    let x = Array::from_f32(&g, &[0.5; 1000], &[1000]).unwrap();
    g.sync().unwrap();
    let before = g.stats();
    let mut y = x.clone();
    for _ in 0..50 {
        y = binary(BinaryOp::Add, &unary(UnaryOp::Sin, &y).unwrap(), &x).unwrap();
    }
    let recorded = g.stats() - before;
    assert!(recorded.dispatches >= 100, "{recorded:?}");
    assert_eq!(recorded.waits, 0, "recording must not wait: {recorded:?}");
    let v = y.to_f32_vec().unwrap();
    assert!(v.iter().all(|x| x.is_finite()));
    let after = g.stats() - before;
    assert_eq!(after.waits, 1, "one read, one wait: {after:?}");
}

fn freed_buffers_are_reused_from_the_pool() {
    let g = gpu();
    let x = Array::from_f32(&g, &[0.25; 4096], &[4096]).unwrap();
    drop(unary(UnaryOp::Exp, &x).unwrap());
    let before = g.stats();
    for _ in 0..10 {
        drop(unary(UnaryOp::Exp, &x).unwrap());
    }
    let d = g.stats() - before;
    assert!(d.pool_hits >= 10 && d.pool_misses == 0, "{d:?}");
}

/// An evaluation pass uploads its whole test set every epoch; pooling those buffers grew the
/// process by the test set's size each epoch.
fn uploads_do_not_grow_the_pool() {
    let g = gpu();
    g.sync().unwrap();
    let before = g.stats();
    for _ in 0..20 {
        let batch = Array::from_f32(&g, &[0.5; 65536], &[65536]).unwrap();
        drop(unary(UnaryOp::Exp, &batch).unwrap().to_f32_vec().unwrap());
    }
    let d = g.stats() - before;
    assert_eq!(d.uploads, 20, "{d:?}");
    // the kernel's output comes back to the pool and is reused; the uploads are freed
    assert!(d.bytes_pooled <= 65536 * 4, "the pool grew by {} bytes over 20 uploads: {d:?}", d.bytes_pooled);
    assert!(d.pool_misses <= 1, "{d:?}");
}
