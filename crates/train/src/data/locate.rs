//! Finding data sets without flags: the project's `data/` folder seen from the current
//! directory, from the executable, or from this crate's source tree; Fashion-MNIST also where
//! Debian's `dataset-fashion-mnist` package installs it.

use super::read::find_plain_or_gz;
use std::path::{Path, PathBuf};

/// Where Debian's `dataset-fashion-mnist` package puts the files.
pub const DEBIAN_FASHION_MNIST: &str = "/usr/share/datasets/fashion-mnist";

/// Directories that may hold the project's `data/` folder, most specific first: the current
/// directory and its ancestors, the executable's directory and its ancestors, and the
/// workspace root this crate was built from.
pub fn search_roots() -> Vec<PathBuf> {
    let mut roots = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        roots.extend(cwd.ancestors().map(Path::to_path_buf));
    }
    if let Some(exe_dir) = std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_path_buf)) {
        roots.extend(exe_dir.ancestors().map(Path::to_path_buf));
    }
    roots.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));
    roots
}

/// The first `root/data/<name>` that holds `marker` (plain or gzipped).
pub fn find_in_data(name: &str, marker: &str) -> Option<PathBuf> {
    search_roots()
        .into_iter()
        .map(|root| root.join("data").join(name))
        .find(|dir| find_plain_or_gz(dir, marker).is_some())
}

/// The bundled MNIST folder (`data/mnist`).
pub fn find_bundled_mnist() -> Option<PathBuf> {
    find_in_data("mnist", "train-labels-idx1-ubyte")
}

/// Fashion-MNIST: `data/fashion-mnist` if someone put it there, else the Debian package's folder.
pub fn find_fashion_mnist() -> Option<PathBuf> {
    find_in_data("fashion-mnist", "train-labels-idx1-ubyte").or_else(|| {
        let debian = Path::new(DEBIAN_FASHION_MNIST);
        find_plain_or_gz(debian, "train-labels-idx1-ubyte").map(|_| debian.to_path_buf())
    })
}

/// CIFAR-10 in either layout under `data/cifar10`, or an unpacked copy of the shared JPEG
/// tarball beside the project (`../shared/data/cifar10`).
pub fn find_cifar10() -> Option<PathBuf> {
    search_roots()
        .into_iter()
        .flat_map(|root| [root.join("data/cifar10"), root.join("../shared/data/cifar10")])
        .find(|dir| super::cifar::detect(dir).is_some())
}

/// The bundled Tiny Shakespeare text (`data/tinyshakespeare/input.txt[.gz]`).
pub fn find_tiny_shakespeare() -> Option<PathBuf> {
    find_in_data("tinyshakespeare", "input.txt").and_then(|dir| find_plain_or_gz(&dir, "input.txt"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_data_is_found_from_the_source_tree() {
        // data/ is part of the repository, so the CARGO_MANIFEST_DIR root always finds it
        let mnist = find_bundled_mnist().expect("data/mnist is bundled");
        assert!(mnist.join("t10k-images-idx3-ubyte.gz").is_file());
        let text = find_tiny_shakespeare().expect("data/tinyshakespeare is bundled");
        assert!(text.ends_with("input.txt.gz"));
        let roots = search_roots();
        assert!(roots.last().unwrap().join("data/mnist").is_dir());
    }
}
