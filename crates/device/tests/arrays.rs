//! Arrays: errors name the kernel and the shape; values round-trip through every dtype.

use ferrograd_device::testing::gpu;
use ferrograd_device::{Array, DType, DeviceError};

/// Arrays may be as large as a buffer (kernels bind larger-than-binding arrays in windows or
/// parts: `large_arrays.rs`); beyond that the allocation is refused.
#[test]
fn an_array_over_the_adapter_limit_is_an_error_naming_kernel_and_shape() {
    let g = gpu();
    let limit = g.gpu_context().unwrap().caps().max_buffer;
    let n = (limit / 8 + 1) as usize;
    let err = Array::empty(&g, &[n, 2], DType::F32, "relu").unwrap_err();
    assert!(matches!(err, DeviceError::TooLarge { kernel: "relu", .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("relu") && msg.contains(&format!("[{n}, 2]")), "{msg}");
}

#[test]
fn values_that_do_not_fill_the_shape_are_an_error() {
    let g = gpu();
    let err = Array::from_f32(&g, &[1.0; 5], &[2, 3]).unwrap_err().to_string();
    assert!(err.contains("from_f32") && err.contains("[2, 3]"), "{err}");
}

#[test]
fn arrays_round_trip_through_every_dtype() {
    let g = gpu();
    let v = [1.5f32, -2.25, 3.0];
    assert_eq!(Array::from_f32(&g, &v, &[3]).unwrap().to_f32_vec().unwrap(), v);
    assert_eq!(Array::from_u32(&g, &[7, 0, u32::MAX], &[3]).unwrap().to_u32_vec().unwrap(), [7, 0, u32::MAX]);
    if g.has_f16() {
        let h: Vec<half::f16> = v.iter().map(|&x| half::f16::from_f32(x)).collect();
        assert_eq!(Array::from_f16(&g, &h, &[3]).unwrap().to_f32_vec().unwrap(), v);
    }
    let full = Array::full(&g, &[2, 2], 0.75).unwrap().to_f32_vec().unwrap();
    assert_eq!(full, [0.75; 4]);
}
