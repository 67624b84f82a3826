//! Gradient checks of convolution and pooling.

mod common;

use common::{check, input};
use ferrograd_device::kernels::conv::Conv2dGeometry;
use ferrograd_device::kernels::elementwise::UnaryOp;
use ferrograd_device::testing::Rng;
use ferrograd_graph::ops::conv::Conv2dOptions;
use ferrograd_graph::Tensor;

#[test]
fn conv2d_variants() {
    let mut rng = Rng::new(10);
    let cases = [
        // (input shape, weight shape, options)
        ([2, 3, 5, 6], [4, 3, 3, 3], Conv2dOptions::default()),
        ([1, 2, 6, 5], [3, 2, 3, 2], Conv2dOptions { stride: [2, 1], padding: [1, 2], ..Default::default() }),
        ([1, 2, 7, 7], [2, 2, 3, 3], Conv2dOptions { dilation: [2, 2], padding: [1, 1], ..Default::default() }),
        ([2, 4, 4, 4], [6, 2, 3, 3], Conv2dOptions { groups: 2, padding: [1, 1], ..Default::default() }),
    ];
    for (xs, ws, o) in cases {
        let (x, w, b) = (input(&mut rng, &xs), input(&mut rng, &ws), input(&mut rng, &[ws[0]]));
        check(
            &format!("conv2d {xs:?} {ws:?} {o:?}"),
            |t| t[0].conv2d(&t[1], Some(&t[2]), &o),
            &[x.clone(), w.clone(), b],
        );
        check(&format!("conv2d no bias {o:?}"), |t| t[0].conv2d(&t[1], None, &o), &[x.clone(), w.clone()]);
        // with a fused activation (per group, with the groups)
        let act = Some(if o.groups > 1 { UnaryOp::Sigmoid } else { UnaryOp::Relu });
        check(&format!("conv2d {act:?} {o:?}"), |t| t[0].conv2d_act(&t[1], None, &o, act), &[x, w]);
    }
}

#[test]
fn conv2d_in_chunks_of_the_batch() {
    // the path a large batch takes: columns rebuilt per chunk in the backward pass, weight
    // gradients summed over chunks, the last chunk smaller
    let mut rng = Rng::new(12);
    let cases = [
        ([3, 3, 5, 5], [4, 3, 3, 3], Conv2dOptions::new(1, 1), 2),
        ([3, 4, 4, 4], [6, 2, 3, 3], Conv2dOptions { groups: 2, stride: [2, 2], ..Default::default() }, 1),
    ];
    for (xs, ws, o, images) in cases {
        let (x, w, b) = (input(&mut rng, &xs), input(&mut rng, &ws), input(&mut rng, &[ws[0]]));
        check(
            &format!("conv2d {xs:?} {ws:?} {o:?} in chunks of {images}"),
            |t| t[0].conv2d_in_chunks(&t[1], Some(&t[2]), &o, Some(UnaryOp::Tanh), images),
            &[x.clone(), w.clone(), b.clone()],
        );
        // and the same values as one chunk
        let tensors = [x, w, b].map(|a| Tensor::new(a).requires_grad_(true).unwrap());
        let [xt, wt, bt] = &tensors;
        let whole = xt.conv2d(wt, Some(bt), &o).unwrap().data().to_f64_vec().unwrap();
        let chunked = xt.conv2d_in_chunks(wt, Some(bt), &o, None, images).unwrap().data().to_f64_vec().unwrap();
        assert_eq!(whole, chunked, "{xs:?} in chunks of {images}");
    }
}

#[test]
fn pooling() {
    let mut rng = Rng::new(11);
    let x = input(&mut rng, &[2, 3, 7, 6]);
    for g in [Conv2dGeometry::new(2, 2, 0), Conv2dGeometry::new(3, 2, 1), Conv2dGeometry::new(3, 1, 0)] {
        check(&format!("max_pool2d {g:?}"), |t| t[0].max_pool2d(&g), std::slice::from_ref(&x));
        for include in [true, false] {
            check(&format!("avg_pool2d {g:?} {include}"), |t| t[0].avg_pool2d(&g, include), std::slice::from_ref(&x));
        }
    }
    for hw in [[1, 1], [3, 4], [7, 6], [4, 5]] {
        check(&format!("adaptive_avg_pool2d {hw:?}"), |t| t[0].adaptive_avg_pool2d(hw), std::slice::from_ref(&x));
    }
}
