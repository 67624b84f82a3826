//! Data-parallel training through MPI (the `distributed` feature), on lavapipe in CI:
//! `mpirun -np 2 ferrograd train` at global batch 64 ends with the parameters one process
//! training at batch 64 ends with (1e-5 relative, every tensor), for LeNet-5 and, with
//! `--sync-bn`, for LeNet-5 with batch norm; `--resume` continues a 2-process run exactly; and a
//! process that fails makes every process exit with its error instead of hanging.

#![cfg(feature = "distributed")]

mod common;

use common::{text, write_synthetic_mnist};
use ferrograd_device::Device;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The bundled MNIST: real digits, so every weight gets a gradient.
fn mnist() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist").to_str().unwrap().to_string()
}

/// `mpirun` from PATH; a build with the feature has MPI installed, so a missing one fails.
fn mpirun() -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("mpirun"))
        .find(|p| p.is_file());
    found
        .expect("mpirun is not on PATH: install MPI (apt-get install openmpi-bin libopenmpi-dev) to test `distributed`")
}

/// `ferrograd ARGS` alone (`processes` None) or as `mpirun -np N` processes, in `cwd`.
fn run(processes: Option<usize>, args: &[&str], cwd: &Path) -> Output {
    let exe = env!("CARGO_BIN_EXE_ferrograd");
    let mut command = match processes {
        None => Command::new(exe),
        Some(n) => {
            let mut c = Command::new(mpirun());
            // root in CI containers; more processes than cores on a small machine
            c.args(["--allow-run-as-root", "--oversubscribe", "-np", &n.to_string(), exe]);
            c
        }
    };
    command.args(args).current_dir(cwd);
    quiet(&mut command).output().expect("the command runs")
}

/// The environment of a test run: lavapipe's runtime directory, and OpenMPI's shared-memory
/// transport without the cross-process copies (ptrace) that containers often forbid.
fn quiet(command: &mut Command) -> &mut Command {
    command.env("XDG_RUNTIME_DIR", std::env::temp_dir()).env("OMPI_MCA_btl_vader_single_copy_mechanism", "none")
}

fn train(processes: Option<usize>, args: &[&str], cwd: &Path) {
    let out = run(processes, args, cwd);
    assert!(out.status.success(), "{processes:?} processes: train {args:?} failed:\n{}", text(&out));
}

/// Every model entry (parameters and buffers) of a run's checkpoint.
fn weights(run: &Path) -> BTreeMap<String, Vec<f64>> {
    let ck = ferrograd_train::checkpoint::load(&run.join("checkpoint.safetensors"), &Device::Cpu).unwrap();
    ck.arrays
        .into_iter()
        .filter(|(name, _)| !name.starts_with("optimizer."))
        .map(|(name, a)| (name, a.cpu_data().clone()))
        .collect()
}

/// Each tensor of `a` within `rel` of `b`'s, relative to the tensor's largest magnitude.
fn assert_same_weights(a: &Path, b: &Path, rel: f64) {
    let (a, b) = (weights(a), weights(b));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, x) in &a {
        let y = &b[name];
        let scale = y.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-30);
        let worst = x.iter().zip(y).fold(0.0f64, |m, (p, q)| m.max((p - q).abs())) / scale;
        assert!(worst <= rel, "{name}: relative difference {worst:.3e} > {rel:e}");
    }
}

fn summary(run: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap()
}

/// SGD at a constant rate: a run that rounding does not throw off course. (Under Adam, a
/// weight whose gradient is near zero moves by about the learning rate in a direction its
/// rounding decides, so two correct runs that add in another order drift apart: 3e-4 after 20
/// steps of the default recipe, 1e-7 after one step.)
const STEADY: [&str; 6] = ["--optimizer", "sgd", "--lr", "0.02", "--schedule", "constant"];

/// 20 steps of batch 64 on 1280 digits, one epoch, then the test set.
fn twenty_steps<'a>(model: &'a str, data: &'a str, out: &'a str) -> Vec<&'a str> {
    let args = ["train", "--model", model, "--data-dir", data, "--limit", "1280", "--batch-size", "64"];
    let mut args = args.to_vec();
    args.extend(["--epochs", "1", "--out", out]);
    args.extend(STEADY);
    args
}

#[test]
fn two_processes_train_lenet5_as_one_does() {
    let tmp = tempfile::tempdir().unwrap();
    let data = mnist();
    train(None, &twenty_steps("lenet5", &data, "one"), tmp.path());
    train(Some(2), &twenty_steps("lenet5", &data, "two"), tmp.path());
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    assert_same_weights(&two, &one, 1e-5);
    // rank 0 alone wrote the run's files; the statistics are the whole job's
    let (s1, s2) = (summary(&one), summary(&two));
    let loss = |s: &serde_json::Value| s["final_train_loss"].as_f64().unwrap();
    assert!((loss(&s1) - loss(&s2)).abs() <= 1e-5 * loss(&s1), "train loss {s1} vs {s2}");
    let acc = |s: &serde_json::Value| s["test_accuracy"].as_f64().unwrap();
    assert!((acc(&s1) - acc(&s2)).abs() <= 2e-4, "test accuracy {s1} vs {s2}");
}

#[test]
fn two_processes_with_sync_bn_train_a_batch_norm_model_as_one_does() {
    let tmp = tempfile::tempdir().unwrap();
    let data = mnist();
    train(None, &twenty_steps("lenet5_bn", &data, "one"), tmp.path());
    let mut args = twenty_steps("lenet5_bn", &data, "two");
    args.push("--sync-bn");
    train(Some(2), &args, tmp.path());
    // the running statistics too: they are the global batch's on every process
    assert_same_weights(&tmp.path().join("two"), &tmp.path().join("one"), 1e-5);
}

#[test]
fn a_two_process_run_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("mnist");
    std::fs::create_dir(&data).unwrap();
    // 329 = 10 * 32 + 9: the last batch splits 5 + 4, which the examples-weighted average keeps exact
    write_synthetic_mnist(&data, 329, 40);
    let data = data.to_str().unwrap();
    let base = ["train", "--data-dir", data, "--batch-size", "32", "--epochs", "2"];
    let with = |extra: &[&'static str]| [&base[..], &STEADY[..], extra].concat();
    train(None, &with(&["--out", "straight"]), tmp.path());
    train(Some(2), &with(&["--out", "paused", "--pause-after", "1"]), tmp.path());
    train(Some(2), &with(&["--out", "paused", "--resume"]), tmp.path());
    assert_same_weights(&tmp.path().join("paused"), &tmp.path().join("straight"), 1e-5);
    assert_eq!(summary(&tmp.path().join("paused"))["epochs"], 2);
}

#[test]
fn a_failing_process_makes_every_process_exit_with_its_error() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("mnist");
    std::fs::create_dir(&data).unwrap();
    write_synthetic_mnist(&data, 128, 16);
    let exe = env!("CARGO_BIN_EXE_ferrograd");
    // rank 0 finds the data, rank 1 does not (MPMD: one command line per rank)
    let rank = |dir: &str| {
        ["-np", "1", exe, "train", "--data-dir", dir, "--batch-size", "32", "--epochs", "1", "--out", "run"]
            .map(String::from)
    };
    let mut command = Command::new(mpirun());
    command
        .args(["--allow-run-as-root", "--oversubscribe"])
        .args(rank(data.to_str().unwrap()))
        .arg(":")
        .args(rank(tmp.path().join("nowhere").to_str().unwrap()))
        .current_dir(tmp.path());
    let out = quiet(&mut command).output().unwrap();
    let all = text(&out);
    assert!(!out.status.success(), "the job succeeded:\n{all}");
    let said = all.lines().filter(|l| l.starts_with("error: rank 1 failed: ") && l.contains("nowhere")).count();
    assert_eq!(said, 2, "both processes report rank 1's error:\n{all}");
}
