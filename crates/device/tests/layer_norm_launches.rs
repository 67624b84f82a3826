//! Layer norm takes one launch forward and two backward (a test binary of its own: the
//! device's counters are shared by every test in a binary).

use ferrograd_device::kernels::layer_norm::{layer_norm, layer_norm_backward};
use ferrograd_device::testing::{gpu, Rng};
use ferrograd_device::Array;

#[test]
fn launches_one_forward_and_two_backward() {
    let g = gpu();
    let ctx = g.gpu_context().unwrap();
    let mut rng = Rng::new(12);
    let x = Array::from_f32(&g, &rng.vec(6 * 64), &[6, 64]).unwrap();
    let (w, b) = (Array::from_f32(&g, &rng.vec(64), &[64]).unwrap(), Array::from_f32(&g, &rng.vec(64), &[64]).unwrap());
    ctx.set_poison_outputs(false); // poisoning would add a fill per output
    let before = ctx.stats().dispatches;
    let (_, stats) = layer_norm(&x, 64, Some((&w, &b)), 1e-5).unwrap();
    assert_eq!(ctx.stats().dispatches - before, 1);
    let before = ctx.stats().dispatches;
    layer_norm_backward(&x, &x, &stats, 64, Some(&w)).unwrap();
    assert_eq!(ctx.stats().dispatches - before, 2);
}
