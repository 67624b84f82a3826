//! The cooperative-matrix matmul never runs in CI: lavapipe has no cooperative matrices, so no
//! parity test reaches it. naga, the WGSL compiler inside wgpu 30, parses and validates its
//! source here with every capability on, so a WGSL error in it fails CI without a GPU.

use ferrograd_device::kernels::matmul::MATMUL_COOP;

fn validate(source: &str) -> Result<(), String> {
    let module = naga::front::wgsl::parse_str(source).map_err(|e| e.emit_to_string(source))?;
    naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all())
        .validate(&module)
        .map(|_| ())
        .map_err(|e| format!("{e:?}"))
}

#[test]
fn the_cooperative_matrix_kernel_parses_and_validates() {
    if let Err(e) = validate(MATMUL_COOP.source) {
        panic!("matmul_coop does not validate:\n{e}");
    }
}

#[test]
fn a_broken_copy_of_it_is_refused() {
    // the check can fail: the same source with one name undefined
    let broken = MATMUL_COOP.source.replace("let aligned =", "let misaligned =");
    assert_ne!(broken, MATMUL_COOP.source);
    assert!(validate(&broken).is_err());
}
