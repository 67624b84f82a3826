//! The `ferrograd` command line: train, eval, predict, visualize, bench, devices.
//! With no arguments it trains LeNet-5 on the bundled MNIST.

mod cli;

use clap::Parser;

fn main() {
    cli::runtime_dir::ensure();
    let args = cli::Cli::parse();
    if let Err(e) = cli::run(args) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
