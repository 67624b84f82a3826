//! Batch norm synchronised over replicas (`ops::sync_norm`): with one replica it is batch norm
//! (finite differences, GPU against CPU); with two replicas holding unequal parts of a batch,
//! their outputs, their examples-weighted gradients and their running statistics are those of
//! plain batch norm over the whole batch.

mod common;

use common::{check, input};
use ferrograd_device::testing::Rng;
use ferrograd_device::{Array, DType, Device};
use ferrograd_graph::ops::norm::{batch_norm, RunningStats};
use ferrograd_graph::ops::sync_norm::batch_norm_synced;
use ferrograd_graph::replicas::ReplicaSum;
use ferrograd_graph::Tensor;
use std::sync::{Arc, Barrier, Mutex};

/// One replica: the sum over replicas is the value itself.
struct Alone;

impl ReplicaSum for Alone {
    fn sum_over_replicas(&self, _: &mut [f64]) -> Result<(), String> {
        Ok(())
    }
}

/// Replicas as threads of one process, summing through shared memory.
struct Threads {
    sum: Mutex<Vec<f64>>,
    barrier: Barrier,
}

impl ReplicaSum for Threads {
    fn sum_over_replicas(&self, values: &mut [f64]) -> Result<(), String> {
        {
            let mut sum = self.sum.lock().unwrap();
            sum.resize(values.len(), 0.0);
            sum.iter_mut().zip(values.iter()).for_each(|(s, v)| *s += v);
        }
        self.barrier.wait();
        values.copy_from_slice(&self.sum.lock().unwrap());
        if self.barrier.wait().is_leader() {
            self.sum.lock().unwrap().clear();
        }
        self.barrier.wait(); // nobody adds to the next sum before it is cleared
        Ok(())
    }
}

fn stats_of(device: &Device, c: usize) -> (Tensor, Tensor) {
    let full = |v: f64| Tensor::new(Array::cpu(vec![v; c], &[c], DType::F32).to_device(device).unwrap());
    (full(0.0), full(1.0))
}

#[test]
fn one_replica_is_batch_norm_by_finite_differences_and_on_the_gpu() {
    let mut rng = Rng::new(31);
    for shape in [&[4, 3][..], &[3, 3, 2, 3]] {
        let (x, w, b) = (input(&mut rng, shape), input(&mut rng, &[3]), input(&mut rng, &[3]));
        check(
            &format!("sync_batch_norm, one replica {shape:?}"),
            |t| {
                let (mean, var) = stats_of(&t[0].device(), 3);
                let running = RunningStats { mean: &mean, var: &var, momentum: 0.1 };
                batch_norm_synced(&t[0], running, &t[1], &t[2], 1e-5, Arc::new(Alone))
            },
            &[x, w, b],
        );
    }
}

/// `sum / n`, exactly (on the CPU device, in f64; `mul_scalar` would round 1/n to f32).
fn mean_of(sum: &Tensor, n: usize) -> Tensor {
    let scale = Array::cpu(vec![1.0 / n as f64], &sum.shape(), DType::F32);
    sum.mul(&Tensor::new(scale)).unwrap()
}

/// What one replica computed, and its share of the batch's examples.
struct Part {
    y: Vec<f64>,
    dx: Vec<f64>,
    dw: Vec<f64>,
    db: Vec<f64>,
    mean: Vec<f64>,
    var: Vec<f64>,
    share: f64,
}

/// Rows `rows` of `[N, ...]` values.
fn rows(a: &[f64], shape: &[usize], rows: std::ops::Range<usize>) -> Vec<f64> {
    let per: usize = shape[1..].iter().product();
    a[rows.start * per..rows.end * per].to_vec()
}

#[test]
fn two_replicas_with_unequal_batches_are_batch_norm_over_the_whole_batch() {
    let mut rng = Rng::new(32);
    let shape = [7, 3, 2, 2]; // replica 0 holds 5 rows, replica 1 holds 2
    let (x, w, b, r) = (input(&mut rng, &shape), input(&mut rng, &[3]), input(&mut rng, &[3]), input(&mut rng, &shape));
    let (x, w, b, r) = (x.cpu_data().clone(), w.cpu_data().clone(), b.cpu_data().clone(), r.cpu_data().clone());
    let (n, m) = (shape[0], 5);
    let cpu = |v: &[f64], s: &[usize]| Array::cpu(v.to_vec(), s, DType::F32);

    // one batch: the loss is the mean over examples of sum(y * r)
    let (xt, wt, bt) =
        (Tensor::parameter(cpu(&x, &shape)), Tensor::parameter(cpu(&w, &[3])), Tensor::parameter(cpu(&b, &[3])));
    let (mean, var) = stats_of(&Device::Cpu, 3);
    let running = RunningStats { mean: &mean, var: &var, momentum: 0.1 };
    let y = batch_norm(&xt, Some(running), Some(&wt), Some(&bt), true, 1e-5).unwrap();
    let loss = mean_of(&y.mul(&Tensor::new(cpu(&r, &shape))).unwrap().sum_all().unwrap(), n);
    loss.backward().unwrap();
    let want_y = y.to_vec_f64().unwrap();
    let want = |t: &Tensor| t.grad().unwrap().cpu_data().clone();
    let (want_dx, want_dw, want_db) = (want(&xt), want(&wt), want(&bt));
    let (want_mean, want_var) = (mean.to_vec_f64().unwrap(), var.to_vec_f64().unwrap());

    // two replicas, each with its own mean loss; the trainer weighs their gradients by examples
    let sum = Arc::new(Threads { sum: Mutex::new(Vec::new()), barrier: Barrier::new(2) });
    let parts = [0..m, m..n].map(|range| {
        let (sum, x, w, b, r) = (sum.clone(), x.clone(), w.clone(), b.clone(), r.clone());
        std::thread::spawn(move || {
            let k = range.len();
            let local = [k, shape[1], shape[2], shape[3]];
            let xt = Tensor::parameter(cpu(&rows(&x, &shape, range.clone()), &local));
            let (wt, bt) = (Tensor::parameter(cpu(&w, &[3])), Tensor::parameter(cpu(&b, &[3])));
            let (mean, var) = stats_of(&Device::Cpu, 3);
            let running = RunningStats { mean: &mean, var: &var, momentum: 0.1 };
            let y = batch_norm_synced(&xt, running, &wt, &bt, 1e-5, sum).unwrap();
            let rt = Tensor::new(cpu(&rows(&r, &shape, range.clone()), &local));
            let loss = mean_of(&y.mul(&rt).unwrap().sum_all().unwrap(), k);
            loss.backward().unwrap();
            let grad = |t: &Tensor| t.grad().unwrap().cpu_data().clone();
            Part {
                y: y.to_vec_f64().unwrap(),
                dx: grad(&xt),
                dw: grad(&wt),
                db: grad(&bt),
                mean: mean.to_vec_f64().unwrap(),
                var: var.to_vec_f64().unwrap(),
                share: k as f64 / n as f64,
            }
        })
    });
    let parts: Vec<Part> = parts.into_iter().map(|h| h.join().unwrap()).collect();
    let within = |rel: f64| {
        move |what: &str, got: &[f64], want: &[f64]| {
            assert_eq!(got.len(), want.len(), "{what}");
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() <= rel * (1.0 + w.abs()), "{what}: {g} vs {w}");
            }
        }
    };
    let close = within(1e-9);
    close("y", &parts.iter().flat_map(|p| p.y.clone()).collect::<Vec<_>>(), &want_y);
    let dx: Vec<f64> = parts.iter().flat_map(|p| p.dx.iter().map(|g| g * p.share).collect::<Vec<_>>()).collect();
    close("dx", &dx, &want_dx);
    let weighted = |pick: fn(&Part) -> &Vec<f64>| -> Vec<f64> {
        (0..3).map(|c| parts.iter().map(|p| pick(p)[c] * p.share).sum()).collect()
    };
    close("dweight", &weighted(|p| &p.dw), &want_dw);
    close("dbias", &weighted(|p| &p.db), &want_db);
    // the running update blends with f32 scalars (`mul_scalar`), the kernel's reference in f64
    let blended = within(1e-7);
    for p in &parts {
        blended("running mean", &p.mean, &want_mean);
        blended("running var", &p.var, &want_var);
    }
}
