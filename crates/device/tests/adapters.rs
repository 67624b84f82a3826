//! Choosing an adapter by position: `#K` picks the K-th adapter of the best kind (wrapping
//! around), `NAME#K` the K-th whose name holds NAME; the processes of a data-parallel job on
//! one host share its GPUs this way.

use ferrograd_device::{Device, DeviceError};

#[test]
fn the_kth_adapter_wraps_around_the_matching_ones() {
    let best = ferrograd_device::testing::gpu();
    let name = best.gpu_context().unwrap().adapter_name().to_string();
    // one adapter of the best kind (lavapipe in CI) is the 0th, and the 7th wraps to it
    for spec in ["#0", "#7"] {
        let d = Device::gpu_named(Some(spec)).unwrap();
        let kind = |d: &Device| d.gpu_context().unwrap().adapter_info().device_type;
        assert_eq!(kind(&d), kind(&best), "{spec}");
    }
    let first_word = name.split_whitespace().next().unwrap();
    let d = Device::gpu_named(Some(&format!("{first_word}#3"))).unwrap();
    assert!(d.gpu_context().unwrap().adapter_name().contains(first_word));
    let err = Device::gpu_named(Some("no such adapter#1")).unwrap_err();
    assert!(matches!(err, DeviceError::NoMatchingAdapter { .. }), "{err}");
}
