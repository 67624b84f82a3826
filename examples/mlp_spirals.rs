//! Train a small MLP on two interleaved spirals (generated) until it classifies >= 99% of
//! the points, on the GPU. Exits non-zero if it misses the target.
//!
//! cargo run --example mlp_spirals

use ferrograd::graph::demo;
use ferrograd::prelude::*;

fn main() {
    let result = Device::gpu().map_err(GraphError::from).and_then(|d| demo::train_spirals(&d, 100, 3000, 0.99));
    match result {
        Ok(out) if out.accuracy >= 0.99 => {
            println!(
                "two spirals: accuracy {:.2}% (loss {:.4}) after {} steps",
                100.0 * out.accuracy,
                out.loss,
                out.steps
            )
        }
        Ok(out) => {
            eprintln!(
                "two spirals: accuracy {:.2}% after {} steps, below the 99% target",
                100.0 * out.accuracy,
                out.steps
            );
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
