//! Times the parts of one training step of an experiment on random data (a quick profile).
use std::time::Instant;

use candle_core::{Device, Tensor};
use runner::model::Model;
use runner::spec::check_file;

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "experiments/mnist_cnn.toml".into());
    let checked = check_file(std::path::Path::new(&path));
    let (exp, _) = checked.result.ok_or_else(|| anyhow::anyhow!("invalid"))?;
    let dev = Device::Cpu;
    let model = Model::new(&exp.model, 0, &dev)?;
    let mut opt = runner::train::optim::build(&exp.train.optimizer, model.trainable_vars())?;
    let b = exp.data.batch_size;
    let [c, h, w] = exp.model.input;
    let x = Tensor::randn(0f32, 1., (b, c, h, w), &dev)?;
    let y = Tensor::zeros(b, candle_core::DType::U32, &dev)?;
    let (mut tf, mut tb, mut to) = (0f64, 0f64, 0f64);
    for i in 0..30 {
        let t0 = Instant::now();
        let out = model.forward(&x, true)?;
        let logp = candle_nn::ops::log_softmax(&out, 1)?;
        let loss = candle_nn::loss::nll(&logp, &y)?;
        let _ = loss.to_scalar::<f32>()?;
        let t1 = Instant::now();
        let grads = loss.backward()?;
        let t2 = Instant::now();
        opt.step(&grads)?;
        let t3 = Instant::now();
        if i >= 5 {
            tf += (t1 - t0).as_secs_f64();
            tb += (t2 - t1).as_secs_f64();
            to += (t3 - t2).as_secs_f64();
        }
    }
    let n = 25.0;
    println!(
        "forward {:.2} ms  backward {:.2} ms  optimizer {:.2} ms  => {:.0} img/s",
        tf / n * 1e3,
        tb / n * 1e3,
        to / n * 1e3,
        b as f64 * n / (tf + tb + to)
    );
    Ok(())
}
