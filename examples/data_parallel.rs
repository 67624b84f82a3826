//! Data-parallel training in a loop of your own: every process holds the spirals MLP, takes its
//! share of each global batch (points rank, rank + size, ...), and `DataParallel` averages the
//! gradients between `backward` and the optimizer's step, so the processes stay identical.
//!
//! mpirun -np 2 cargo run --release --features distributed --example data_parallel
//! (as root add --allow-run-as-root; on a machine with fewer cores than processes --oversubscribe)

use ferrograd::graph::demo::{spiral_mlp, two_spirals};
use ferrograd::prelude::*;
use ferrograd::train::distributed::data_parallel::DataParallel;
use ferrograd::train::distributed::mpi;
use std::sync::Arc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `_session` ends MPI when main returns, after the last collective
    let (_session, replicas) = mpi::init()?;
    let replicas = Arc::new(replicas);
    let (rank, size) = (replicas.rank(), replicas.size());
    // the host's k-th process on its k-th GPU of the best kind
    let device = Device::gpu_named(Some(&format!("#{}", replicas.local_rank())))?;

    let (points, labels) = two_spirals(100);
    let mine: Vec<usize> = (rank..labels.len()).step_by(size).collect();
    let xy: Vec<f32> = mine.iter().flat_map(|&i| [points[2 * i], points[2 * i + 1]]).collect();
    let x = Tensor::from_f32(&device, &xy, &[mine.len(), 2])?;
    let y = Tensor::from_u32(&device, &mine.iter().map(|&i| labels[i]).collect::<Vec<_>>(), &[mine.len()])?;

    manual_seed(0);
    let model = spiral_mlp(&device)?;
    let ddp = DataParallel::new(replicas.clone(), &model)?; // every process starts from rank 0's weights
    let mut opt = Adam::new(model.named_parameters(), AdamConfig { lr: 1e-2, ..Default::default() });
    for step in 0..=1000 {
        let loss = cross_entropy(&model.forward(&x)?, &y, 0.0)?;
        opt.zero_grad();
        loss.backward()?;
        ddp.sync_gradients(mine.len())?;
        opt.step()?;
        if step % 250 == 0 {
            // the global batch's mean loss: each process's sum over its points, added up
            let mut sums = [loss.item()? * mine.len() as f64, mine.len() as f64];
            replicas.sum_f64(&mut sums)?;
            if replicas.is_root() {
                println!("step {step}: loss {:.4} over {} points in {size} processes", sums[0] / sums[1], sums[1]);
            }
        }
    }
    Ok(())
}
