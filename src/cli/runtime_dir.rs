//! Mesa's Vulkan drivers (lavapipe among them) print `error: XDG_RUNTIME_DIR is invalid or not
//! set in the environment.` when the variable is missing, as it is under `sudo`, in containers
//! and in CI; users read it as our failure. When it is unset we point it at a private directory
//! of our own, as a login session would: `$TMPDIR/ferrograd-runtime-UID`, created with mode
//! 0700, and used only if it is a real directory (not a link) owned by us that no one else can
//! enter. Otherwise the variable stays unset and the driver's message appears as before.

/// Sets `XDG_RUNTIME_DIR` when it is unset or empty. Call before any thread starts and before
/// the wgpu instance is made.
pub fn ensure() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| !d.is_empty()) {
        return;
    }
    #[cfg(unix)]
    if let Some(dir) = private_dir() {
        // SAFETY: called at the top of main, before any other thread exists.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", dir) };
    }
}

#[cfg(unix)]
fn private_dir() -> Option<std::path::PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    // the owner of /proc/self is this process's effective user (Linux; elsewhere we skip)
    let uid = std::fs::metadata("/proc/self").ok()?.uid();
    let dir = std::env::temp_dir().join(format!("ferrograd-runtime-{uid}"));
    let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
    let meta = std::fs::symlink_metadata(&dir).ok()?;
    (meta.is_dir() && meta.uid() == uid && meta.mode() & 0o077 == 0).then_some(dir)
}
