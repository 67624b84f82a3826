//! The README's library example: a two-layer network fitted to two points with Adam.

use ferrograd::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = Device::gpu()?;
    let model =
        Sequential::new().add(Linear::new(&device, 2, 64, true)?).add(Relu).add(Linear::new(&device, 64, 2, true)?);
    let mut opt = Adam::new(model.named_parameters(), AdamConfig { lr: 1e-2, ..Default::default() });
    let x = Tensor::from_f32(&device, &[0.5, -1.0, 1.5, 0.25], &[2, 2])?;
    let y = Tensor::from_u32(&device, &[1, 0], &[2])?;
    for step in 0..100 {
        let loss = cross_entropy(&model.forward(&x)?, &y, 0.0)?;
        opt.zero_grad();
        loss.backward()?;
        opt.step()?;
        if step % 25 == 0 {
            println!("step {step}: loss {:.4}", loss.item()?);
        }
    }
    Ok(())
}
