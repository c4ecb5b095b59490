//! PyTorch's default initialisation, drawn from a seeded generator.

use candle_core::{Device, Result, Tensor, Var};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// `U(-bound, bound)` with `bound = 1 / sqrt(fan_in)`: what PyTorch's `Conv2d` and `Linear`
/// use for both weight and bias. For the weight that is `kaiming_uniform_(a = sqrt(5))`:
/// gain `sqrt(2 / (1 + 5))`, bound `gain * sqrt(3 / fan_in) = 1 / sqrt(fan_in)`.
pub(crate) fn fan_in_uniform(
    rng: &mut ChaCha8Rng,
    shape: &[usize],
    fan_in: usize,
    device: &Device,
) -> Result<Var> {
    let bound = 1.0 / (fan_in as f64).sqrt();
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n)
        .map(|_| ((rng.random::<f64>() * 2.0 - 1.0) * bound) as f32)
        .collect();
    Var::from_tensor(&Tensor::from_vec(values, shape, &Device::Cpu)?.to_device(device)?)
}

/// A tensor of `value`s (BatchNorm weight 1, bias 0, running mean 0, running var 1).
pub(crate) fn constant(value: f32, len: usize, device: &Device) -> Result<Var> {
    Var::from_tensor(&Tensor::full(value, len, device)?)
}
