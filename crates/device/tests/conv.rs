//! Parity: im2col and col2im on the GPU against their f64 CPU twins on random nonzero
//! inputs, outputs poisoned first; bound f32 1e-5 relative. Plus adjointness and a check of
//! the column layout against a direct convolution written here from the definition.

use ferrograd_device::kernels::conv::{col2im, im2col, reference, Conv2dGeometry};
use ferrograd_device::testing::{assert_close, gpu, Rng, F32_TOL};
use ferrograd_device::{Array, Device};

fn geom(kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2], dilation: [usize; 2]) -> Conv2dGeometry {
    Conv2dGeometry { kernel, stride, padding, dilation }
}

/// Odd sizes, stride 2, padding, dilation 2, batch > 1, non-square inputs and windows; and
/// output widths that are multiples of 4 (im2col's vec4 kernel), with stride, padding, dilation;
/// and inputs and outputs both 4-aligned in width with unit steps along it (the vec4 loads of
/// im2col and col2im), with paddings 0 to 4, windows 1 to 9 wide, stride and dilation in height;
/// and output planes of a multiple of 4 whose width is not (im2col's four pixels across rows);
/// unit strides with dilation in height (col2im's range of window rows).
fn cases() -> Vec<([usize; 4], Conv2dGeometry)> {
    vec![
        ([2, 3, 8, 8], Conv2dGeometry::new(3, 1, 1)),
        ([2, 2, 9, 16], Conv2dGeometry::new(3, 2, 1)),
        ([1, 2, 6, 12], geom([2, 3], [1, 1], [0, 1], [2, 1])),
        ([2, 3, 7, 5], Conv2dGeometry::new(3, 1, 1)),
        ([1, 2, 9, 8], Conv2dGeometry::new(3, 2, 0)),
        ([3, 2, 6, 7], geom([2, 3], [2, 1], [1, 0], [2, 2])),
        ([2, 4, 11, 13], geom([3, 3], [2, 2], [2, 1], [2, 1])),
        ([2, 1, 5, 5], Conv2dGeometry::new(1, 1, 0)),
        ([1, 3, 4, 4], Conv2dGeometry::new(4, 1, 0)),
        ([2, 2, 12, 8], Conv2dGeometry::new(5, 1, 0)),
        ([1, 2, 8, 8], Conv2dGeometry::new(5, 1, 2)),
        ([1, 1, 9, 16], Conv2dGeometry::new(7, 1, 3)),
        ([2, 2, 9, 8], geom([3, 3], [2, 1], [1, 1], [1, 1])),
        ([1, 2, 5, 8], geom([3, 9], [1, 1], [1, 4], [2, 1])),
        ([2, 3, 4, 12], geom([1, 1], [1, 1], [0, 0], [1, 1])),
        ([2, 3, 14, 14], Conv2dGeometry::new(5, 1, 0)),
        ([1, 2, 8, 12], Conv2dGeometry::new(3, 2, 1)),
        ([2, 2, 10, 11], geom([3, 3], [1, 2], [2, 1], [2, 1])),
        ([1, 2, 9, 10], geom([3, 3], [1, 1], [2, 1], [2, 1])),
    ]
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn out_hw_follows_pytorch() {
    // sizes from the ResNet and AlexNet stems and the PyTorch Conv2d docs formula
    assert_eq!(Conv2dGeometry::new(7, 2, 3).out_hw(224, 224).unwrap(), [112, 112]);
    assert_eq!(Conv2dGeometry::new(11, 4, 2).out_hw(224, 224).unwrap(), [55, 55]);
    assert_eq!(geom([3, 3], [1, 1], [0, 0], [2, 2]).out_hw(7, 9).unwrap(), [3, 5]);
    let err = Conv2dGeometry::new(5, 1, 0).out_hw(4, 9).unwrap_err().to_string();
    assert!(err.contains("4x9") && err.contains("kernel: [5, 5]"), "{err}");
    assert!(Conv2dGeometry::new(3, 0, 0).out_hw(8, 8).is_err());
}

#[test]
fn im2col_matches_reference() {
    let g = gpu();
    let mut rng = Rng::new(11);
    for (shape, geo) in cases() {
        let x = rng.vec(shape.iter().product());
        let got = im2col(&Array::from_f32(&g, &x, &shape).unwrap(), &geo).unwrap();
        let [oh, ow] = geo.out_hw(shape[2], shape[3]).unwrap();
        assert_eq!(got.shape(), &[shape[0], shape[1] * geo.kernel[0] * geo.kernel[1], oh * ow]);
        let want = reference::im2col(&f64s(&x), &shape, &geo);
        assert_close(&format!("im2col {shape:?} {geo:?}"), &got.to_f64_vec().unwrap(), &want, F32_TOL);
    }
}

#[test]
fn col2im_matches_reference() {
    let g = gpu();
    let mut rng = Rng::new(12);
    for (shape, geo) in cases() {
        let [oh, ow] = geo.out_hw(shape[2], shape[3]).unwrap();
        let cols_shape = [shape[0], shape[1] * geo.kernel[0] * geo.kernel[1], oh * ow];
        let cols = rng.vec(cols_shape.iter().product());
        let got = col2im(&Array::from_f32(&g, &cols, &cols_shape).unwrap(), &geo, &shape).unwrap();
        assert_eq!(got.shape(), &shape);
        let want = reference::col2im(&f64s(&cols), &geo, &shape);
        assert_close(&format!("col2im {shape:?} {geo:?}"), &got.to_f64_vec().unwrap(), &want, F32_TOL);
    }
}

#[test]
fn col2im_is_the_adjoint_of_im2col() {
    // <im2col(x), y> == <x, col2im(y)> on both devices
    let mut rng = Rng::new(13);
    for device in [Device::Cpu, gpu()] {
        for (shape, geo) in cases() {
            let [oh, ow] = geo.out_hw(shape[2], shape[3]).unwrap();
            let cols_shape = [shape[0], shape[1] * geo.kernel[0] * geo.kernel[1], oh * ow];
            let x = rng.vec(shape.iter().product());
            let y = rng.vec(cols_shape.iter().product());
            let cols = im2col(&Array::from_f32(&device, &x, &shape).unwrap(), &geo).unwrap();
            let back = col2im(&Array::from_f32(&device, &y, &cols_shape).unwrap(), &geo, &shape).unwrap();
            let lhs = dot(&cols.to_f64_vec().unwrap(), &f64s(&y));
            let rhs = dot(&f64s(&x), &back.to_f64_vec().unwrap());
            let scale: f64 = f64s(&y).iter().map(|v| v.abs()).sum();
            assert!((lhs - rhs).abs() <= F32_TOL * scale, "{shape:?} {geo:?}: {lhs} vs {rhs}");
        }
    }
}

#[test]
fn weight_times_columns_is_the_convolution() {
    // a direct convolution from the definition, against weight[O, C*KH*KW] x im2col(x)
    let g = gpu();
    let mut rng = Rng::new(14);
    let (shape, geo) = ([2, 3, 8, 7], geom([3, 2], [2, 1], [1, 1], [1, 2]));
    let [n, c, h, w] = shape;
    let [kh, kw] = geo.kernel;
    let [oh, ow] = geo.out_hw(h, w).unwrap();
    let o = 4;
    let x = f64s(&rng.vec(n * c * h * w));
    let wt = f64s(&rng.vec(o * c * kh * kw));
    let cols = im2col(&Array::from_f64(&g, &x, &shape).unwrap(), &geo).unwrap().to_f64_vec().unwrap();
    let rows = c * kh * kw;
    for b in 0..n {
        for oc in 0..o {
            for y in 0..oh {
                for xo in 0..ow {
                    let mut direct = 0.0;
                    for ch in 0..c {
                        for i in 0..kh {
                            for j in 0..kw {
                                let iy = (y * 2 + i) as isize - 1;
                                let ix = xo as isize + 2 * j as isize - 1;
                                if iy >= 0 && iy < h as isize && ix >= 0 && ix < w as isize {
                                    let xv = x[((b * c + ch) * h + iy as usize) * w + ix as usize];
                                    direct += wt[((oc * c + ch) * kh + i) * kw + j] * xv;
                                }
                            }
                        }
                    }
                    let p = y * ow + xo;
                    let via: f64 = (0..rows).map(|r| wt[oc * rows + r] * cols[(b * rows + r) * oh * ow + p]).sum();
                    assert!((direct - via).abs() < 1e-5, "b{b} o{oc} ({y},{xo}): {direct} vs {via}");
                }
            }
        }
    }
}

#[test]
fn bad_shapes_are_errors_naming_the_kernel() {
    let g = gpu();
    let x = Array::from_f32(&g, &[1.0; 12], &[3, 4]).unwrap();
    let err = im2col(&x, &Conv2dGeometry::new(3, 1, 1)).unwrap_err().to_string();
    assert!(err.contains("im2col") && err.contains("[3, 4]"), "{err}");
    let x = Array::from_f32(&g, &[1.0; 8], &[1, 2, 2, 2]).unwrap();
    let err = im2col(&x, &Conv2dGeometry::new(5, 1, 0)).unwrap_err().to_string();
    assert!(err.contains("im2col") && err.contains("2x2"), "{err}");
    let cols = Array::from_f32(&g, &[1.0; 36], &[1, 18, 2]).unwrap();
    let err = col2im(&cols, &Conv2dGeometry::new(3, 1, 0), &[1, 2, 3, 3]).unwrap_err().to_string();
    assert!(err.contains("col2im") && err.contains("[1, 18, 2]") && err.contains("[1, 2, 3, 3]"), "{err}");
}

#[test]
fn an_empty_batch_gives_empty_columns() {
    let g = gpu();
    let geo = Conv2dGeometry::new(3, 1, 1);
    let x = Array::from_f32(&g, &[], &[0, 3, 5, 5]).unwrap();
    let cols = im2col(&x, &geo).unwrap();
    assert_eq!(cols.shape(), &[0, 27, 25]);
    assert_eq!(col2im(&cols, &geo, &[0, 3, 5, 5]).unwrap().shape(), &[0, 3, 5, 5]);
}
