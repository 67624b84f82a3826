//! Counter-based random numbers: the CPU twin's Philox matches Random123's published
//! known-answer vectors; the GPU matches the twin (uniform and bernoulli bit for bit, normal
//! within 1e-5 of the tensor's scale); sample statistics are within 5 standard errors.

use ferrograd_device::kernels::random::{bernoulli, normal, reference, uniform};
use ferrograd_device::testing::{assert_close, gpu, F32_TOL};
use ferrograd_device::Device;

#[test]
fn philox_matches_random123_known_answers() {
    // Random123 tests/kat_vectors, the three `philox4x32 10` lines: counter, key, result
    let kat: [([u32; 4], [u32; 2], [u32; 4]); 3] = [
        ([0, 0, 0, 0], [0, 0], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]),
        ([u32::MAX; 4], [u32::MAX; 2], [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]),
        (
            [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
            [0xa4093822, 0x299f31d0],
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
        ),
    ];
    for (counter, key, want) in kat {
        assert_eq!(reference::philox4x32_10(counter, key), want);
    }
}

#[test]
fn gpu_equals_cpu_for_the_same_seed() {
    let g = gpu();
    // not a multiple of the workgroup, and a seed with both halves set
    let (shape, n, seed) = ([7, 1001], 7007, 0x1234_5678_9abc_def0u64);
    for (low, high) in [(0.0f32, 1.0f32), (-2.0, 2.0)] {
        let got = uniform(&g, &shape, seed, low, high).unwrap().to_f32_vec().unwrap();
        let want: Vec<f32> = reference::uniform(n, seed, low, high).iter().map(|&v| v as f32).collect();
        assert_eq!(got, want, "uniform [{low}, {high}) bit for bit");
    }
    let got = uniform(&g, &shape, seed, 0.3, 1.7).unwrap().to_f64_vec().unwrap();
    assert_close("uniform [0.3, 1.7)", &got, &reference::uniform(n, seed, 0.3, 1.7), 1e-7);
    for p in [0.0f32, 0.25, 0.5, 1.0] {
        let got = bernoulli(&g, &shape, seed, p).unwrap().to_f64_vec().unwrap();
        assert_eq!(got, reference::bernoulli(n, seed, p), "bernoulli p={p}");
    }
    let got = normal(&g, &shape, seed, 0.5, 2.0).unwrap().to_f64_vec().unwrap();
    assert_close("normal", &got, &reference::normal(n, seed, 0.5, 2.0), F32_TOL);
    let cpu = uniform(&Device::Cpu, &shape, seed, 0.0, 1.0).unwrap();
    assert_eq!(cpu.shape(), &shape);
    assert_eq!(cpu.to_f64_vec().unwrap(), reference::uniform(n, seed, 0.0, 1.0));
}

fn mean_var(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    (m, v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0))
}

/// |got - want| within 5 standard errors.
fn within(what: &str, got: f64, want: f64, std_err: f64) {
    assert!((got - want).abs() < 5.0 * std_err, "{what}: {got} vs {want} (5 sigma = {})", 5.0 * std_err);
}

#[test]
fn statistics_of_1e5_samples() {
    let g = gpu();
    let n = 100_000;
    let nf = n as f64;
    let (m, v) = mean_var(&uniform(&g, &[n], 7, -1.0, 3.0).unwrap().to_f64_vec().unwrap());
    // U(-1, 3): mean 1, variance 16/12; variance of the sample variance is (mu4 - sigma^4)/n
    // with mu4 = 4^4/80
    within("uniform mean", m, 1.0, (16.0 / 12.0 / nf).sqrt());
    within("uniform variance", v, 16.0 / 12.0, ((256.0 / 80.0 - (16.0f64 / 12.0).powi(2)) / nf).sqrt());
    let (m, v) = mean_var(&normal(&g, &[n], 8, 2.0, 3.0).unwrap().to_f64_vec().unwrap());
    within("normal mean", m, 2.0, 3.0 / nf.sqrt());
    within("normal variance", v, 9.0, 9.0 * (2.0 / nf).sqrt());
    let (m, _) = mean_var(&bernoulli(&g, &[n], 9, 0.3).unwrap().to_f64_vec().unwrap());
    within("bernoulli mean", m, 0.3, (0.3 * 0.7 / nf).sqrt());
}

#[test]
fn different_seeds_differ() {
    let g = gpu();
    let a = uniform(&g, &[1000], 1, 0.0, 1.0).unwrap().to_f32_vec().unwrap();
    for seed in [2u64, 1 | (1 << 32)] {
        let b = uniform(&g, &[1000], seed, 0.0, 1.0).unwrap().to_f32_vec().unwrap();
        let same = a.iter().zip(&b).filter(|(x, y)| x == y).count();
        assert!(same < 5, "seed {seed}: {same} of 1000 equal");
    }
    assert!(uniform(&g, &[0, 4], 1, 0.0, 1.0).unwrap().to_f32_vec().unwrap().is_empty());
}
