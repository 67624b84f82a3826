//! Make a small CNN (conv, batch norm, pooling, linear) overfit one batch to ~zero loss on
//! the GPU. Exits non-zero if the final loss is not below 0.01.
//!
//! cargo run --example cnn_overfit

use ferrograd::graph::demo;
use ferrograd::prelude::*;

fn main() {
    let result = Device::gpu().map_err(GraphError::from).and_then(|d| demo::overfit_cnn(&d, 200, 0.01));
    match result {
        Ok((steps, loss)) if loss < 0.01 => println!("cnn overfit: loss {loss:.6} after {steps} steps"),
        Ok((steps, loss)) => {
            eprintln!("cnn overfit: loss {loss:.6} after {steps} steps, above the 0.01 target");
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
