//! Gradient checks of the recurrent cell ops (CPU finite differences, then GPU against CPU),
//! each wrapped in the matmuls a layer puts around it so that W_ih, W_hh, x and the carried
//! state are all checked.

mod common;

use common::{check, input};
use ferrograd_device::testing::Rng;
use ferrograd_device::Array;
use ferrograd_graph::ops::recurrent::{gru_cell, lstm_cell, rnn_cell, unbind_steps};
use ferrograd_graph::{Result, Tensor};

const B: usize = 3;
const I: usize = 4;
const H: usize = 5;

/// x [B, I], h_prev [B, H], W_ih [G*H, I], W_hh [G*H, H], b_ih, b_hh [G*H] for `gates` G.
fn cell_inputs(rng: &mut Rng, gates: usize) -> Vec<Array> {
    let g = gates * H;
    vec![
        input(rng, &[B, I]),
        input(rng, &[B, H]),
        input(rng, &[g, I]),
        input(rng, &[g, H]),
        input(rng, &[g]),
        input(rng, &[g]),
    ]
}

/// `(x W_ih^T, h W_hh^T)` from the inputs of [`cell_inputs`].
fn projections(t: &[Tensor]) -> Result<(Tensor, Tensor)> {
    Ok((t[0].matmul_t(&t[2], false, true)?, t[1].matmul_t(&t[3], false, true)?))
}

#[test]
fn rnn_cell_gradients() {
    let inputs = cell_inputs(&mut Rng::new(11), 1);
    check(
        "rnn_cell",
        |t| {
            let (xw, hw) = projections(t)?;
            rnn_cell(&xw, &hw, &t[4], &t[5])
        },
        &inputs,
    );
}

#[test]
fn lstm_cell_gradients_through_h_and_c() {
    let mut rng = Rng::new(12);
    let mut inputs = cell_inputs(&mut rng, 4);
    inputs.push(input(&mut rng, &[B, H]));
    check(
        "lstm_cell",
        |t| {
            let (xw, hw) = projections(t)?;
            let (h, c) = lstm_cell(&xw, &hw, &t[4], &t[5], &t[6])?;
            Tensor::cat(&[&h, &c], 1)
        },
        &inputs,
    );
    // only h_t used: the c_t half of the packed output gets a zero gradient
    check(
        "lstm_cell h only",
        |t| {
            let (xw, hw) = projections(t)?;
            Ok(lstm_cell(&xw, &hw, &t[4], &t[5], &t[6])?.0)
        },
        &inputs,
    );
}

#[test]
fn gru_cell_gradients() {
    let inputs = cell_inputs(&mut Rng::new(13), 3);
    check(
        "gru_cell",
        |t| {
            let (xw, hw) = projections(t)?;
            gru_cell(&xw, &hw, &t[4], &t[5], &t[1])
        },
        &inputs,
    );
}

#[test]
fn two_chained_lstm_steps() {
    let mut rng = Rng::new(14);
    let mut inputs = cell_inputs(&mut rng, 4);
    inputs.push(input(&mut rng, &[B, H]));
    check(
        "lstm two steps",
        |t| {
            let (xw, hw) = projections(t)?;
            let (h1, c1) = lstm_cell(&xw, &hw, &t[4], &t[5], &t[6])?;
            let hw2 = h1.matmul_t(&t[3], false, true)?;
            let (h2, c2) = lstm_cell(&xw, &hw2, &t[4], &t[5], &c1)?;
            Tensor::cat(&[&h2, &c2], 1)
        },
        &inputs,
    );
}

#[test]
fn unbind_steps_round_trips_with_gradients() {
    let mut rng = Rng::new(15);
    for steps in [1, 2, 5] {
        let x = input(&mut rng, &[steps, 2, 3]);
        check(
            &format!("unbind_steps T={steps}"),
            |t| {
                let parts = unbind_steps(&t[0])?;
                assert_eq!(parts.len(), steps);
                assert!(parts.iter().all(|p| p.shape() == [2, 3]));
                // weight each step differently so a mixed-up order would fail
                let scaled =
                    parts.iter().enumerate().map(|(i, p)| p.mul_scalar(i as f32 + 1.0)).collect::<Result<Vec<_>>>()?;
                Tensor::stack(&scaled.iter().collect::<Vec<_>>(), 0)
            },
            &[x],
        );
    }
}

#[test]
fn cell_shape_errors_name_the_kernel_and_shapes() {
    let d = ferrograd_device::Device::Cpu;
    let z = |s: &[usize]| Tensor::zeros(&d, s).unwrap();
    let err = lstm_cell(&z(&[2, 8]), &z(&[2, 8]), &z(&[8]), &z(&[8]), &z(&[2, 3])).unwrap_err().to_string();
    assert!(err.contains("lstm_forward") && err.contains("[2, 8]") && err.contains("[2, 3]"), "{err}");
    let err = gru_cell(&z(&[2, 6]), &z(&[2, 6]), &z(&[6]), &z(&[5]), &z(&[2, 2])).unwrap_err().to_string();
    assert!(err.contains("gru_forward") && err.contains("b_hh [5]"), "{err}");
}
