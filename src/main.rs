//! The `ferrograd` command line: train, eval, predict, visualize, bench, devices.
//! With no arguments it trains LeNet-5 on the bundled MNIST.

mod cli;

use clap::{CommandFactory, FromArgMatches};

fn main() {
    cli::runtime_dir::ensure();
    let matches = cli::Cli::command().get_matches();
    let args = cli::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let Err(e) = cli::run(args, &matches) {
        if !e.is::<cli::Reported>() {
            eprintln!("error: {e:#}");
        }
        std::process::exit(1);
    }
}
