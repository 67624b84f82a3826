//! `train`'s numeric flags checked before anything runs, by the library's own config types
//! (so each range is stated once), with errors that name the flag and its range.

use super::train::TrainArgs;
use ferrograd_graph::optim::SgdConfig;
use ferrograd_graph::range::{at_least_one, Allowed, OutOfRange};
use ferrograd_train::trainer::TrainerConfig;
use std::path::Path;

pub fn check(args: &TrainArgs) -> anyhow::Result<()> {
    let flag = |e: OutOfRange| anyhow::anyhow!(e.flag());
    // momentum is checked even when the optimizer does not use it: a NaN there is a mistake too
    let sgd = SgdConfig::default();
    let optimizer = SgdConfig {
        lr: args.lr.unwrap_or(sgd.lr),
        momentum: args.momentum,
        weight_decay: args.weight_decay.unwrap_or(sgd.weight_decay),
        ..sgd
    };
    optimizer.validate().map_err(flag)?;
    let trainer = TrainerConfig {
        clip_grad_norm: args.clip_grad_norm,
        ..TrainerConfig::new("", &args.dataset, args.epochs.unwrap_or(1), Path::new(""))
    };
    trainer.validate().map_err(flag)?;
    Allowed::Fraction.check("label_smoothing", args.label_smoothing as f64).map_err(flag)?;
    for (name, value) in [("batch_size", args.batch_size), ("limit", args.limit), ("bptt", args.bptt)] {
        value.map_or(Ok(()), |v| at_least_one(name, v)).map_err(flag)?;
    }
    Ok(())
}
