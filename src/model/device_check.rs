//! Every layer op on two devices, forward and backward, compared on small inputs: the check that
//! CUDA computes what the CPU computes (`runner device-check`, and `tests/device_check.rs`).
//!
//! Each case is a tiny experiment whose model exercises a few ops with odd sizes, stride and
//! padding. The model is built on both devices from the same seed (weights are drawn on the CPU,
//! so they are identical), fed the same input, and `sum(output * r)` for a fixed random `r` is
//! differentiated; the outputs and every parameter gradient must agree to a relative tolerance.

use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::Model;
use crate::check::check_str;

/// One case: a name, the ops it covers, and the experiment text.
struct Case {
    name: &'static str,
    layers: &'static str,
    input: [usize; 3],
}

const CASES: &[Case] = &[
    Case {
        name: "conv2d stride 2 padding 1, relu, linear",
        input: [3, 9, 7],
        layers: r#"{ op = "conv2d", out = 5, kernel = 3, stride = 2, padding = 1 },
  { op = "relu" }, { op = "flatten" }, { op = "linear", out = 4 }"#,
    },
    Case {
        name: "conv2d without bias, batch_norm2d (training), max_pool2d 3/2 padding 1",
        input: [2, 11, 11],
        layers: r#"{ op = "conv2d", out = 6, kernel = 5, padding = 2, bias = false },
  { op = "batch_norm2d" }, { op = "max_pool2d", kernel = 3, stride = 2, padding = 1 },
  { op = "flatten" }, { op = "linear", out = 4 }"#,
    },
    Case {
        name: "avg_pool2d, tanh, sigmoid, global_avg_pool, log_softmax",
        input: [3, 8, 8],
        layers: r#"{ op = "conv2d", out = 4, kernel = 1 }, { op = "tanh" },
  { op = "avg_pool2d", kernel = 2 }, { op = "sigmoid" }, { op = "conv2d", out = 4, kernel = 3 },
  { op = "global_avg_pool" }, { op = "log_softmax" }"#,
    },
    Case {
        name: "add, concat, identity (a DAG with a 1x1 projection), dropout",
        input: [3, 6, 6],
        layers: r#"{ op = "conv2d", name = "a", out = 4, kernel = 3, padding = 1 },
  { op = "conv2d", name = "proj", inputs = ["input"], out = 4, kernel = 1 },
  { op = "add", name = "sum", inputs = ["a", "proj"] },
  { op = "identity", name = "same", inputs = ["sum"] },
  { op = "concat", name = "both", inputs = ["same", "a"] },
  { op = "dropout", p = 0.25 }, { op = "flatten" }, { op = "linear", out = 4 }"#,
    },
    Case {
        name: "gelu (erf and tanh), scale, conv2d padding same with dirac init",
        input: [3, 7, 7],
        layers: r#"{ op = "conv2d", out = 4, kernel = 3, padding = "same", init = "dirac" },
  { op = "gelu" }, { op = "conv2d", out = 5, kernel = 3 }, { op = "gelu", approximate = "tanh" },
  { op = "scale", factor = 0.25 }, { op = "flatten" }, { op = "linear", out = 4 }"#,
    },
];

/// How one case compared.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// What the case covers.
    pub name: String,
    /// Largest |a - b| / max(1, |a|) over the outputs.
    pub output_error: f32,
    /// Largest |a - b| / max(1e-3, max|a|) over the gradients of each parameter.
    pub gradient_error: f32,
    /// Whether both are within the tolerance.
    pub ok: bool,
}

/// A model's output and its named parameter gradients, flattened.
type Outcome = (Vec<f32>, Vec<(String, Vec<f32>)>);

/// Relative tolerance for forward outputs and gradients (float32, different summation orders).
pub const TOLERANCE: f32 = 1e-3;

/// Runs every case on `reference` and `other`.
pub fn compare_devices(reference: &Device, other: &Device) -> anyhow::Result<Vec<CaseResult>> {
    CASES
        .iter()
        .map(|c| compare_case(c, reference, other, (3, 3)))
        .collect()
}

fn experiment_text(c: &Case) -> String {
    format!(
        r#"name = "device_check"
[data]
dataset = "synthetic"
synthetic = {{ shape = [{}, {}, {}], classes = 4, train_size = 8, test_size = 8 }}
batch_size = 3
[model]
layers = [
  {}
]
"#,
        c.input[0], c.input[1], c.input[2], c.layers
    )
}

/// One case; `seeds` are the weight seeds on the two devices (equal, except in the test that
/// shows a difference is caught).
fn compare_case(
    c: &Case,
    reference: &Device,
    other: &Device,
    seeds: (u64, u64),
) -> anyhow::Result<CaseResult> {
    let checked = check_str("device_check.toml", &experiment_text(c), "device_check");
    let Some((_, graph)) = checked.result else {
        anyhow::bail!(
            "case `{}` is not a valid model:\n{}",
            c.name,
            checked.render()
        );
    };
    let batch = 3;
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let n: usize = batch * c.input.iter().product::<usize>();
    let x: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let run = |device: &Device, seed: u64| -> anyhow::Result<Outcome> {
        let model = Model::new(&graph, seed, device)?;
        let shape = [batch, c.input[0], c.input[1], c.input[2]];
        let x = Tensor::from_vec(x.clone(), &shape[..], device)?;
        let out = model.forward(&x, true)?;
        let mut r_rng = ChaCha8Rng::seed_from_u64(11);
        let r: Vec<f32> = (0..out.elem_count())
            .map(|_| r_rng.random_range(-1.0..1.0))
            .collect();
        let r = Tensor::from_vec(r, out.shape(), device)?;
        let loss = (&out * &r)?.sum_all()?;
        let grads = loss.backward()?;
        let mut gs = Vec::new();
        for (name, var) in model.named_parameters() {
            let g = grads
                .get(var.as_tensor())
                .ok_or_else(|| anyhow::anyhow!("no gradient for {name}"))?;
            gs.push((name.clone(), flat(g)?));
        }
        Ok((flat(&out)?, gs))
    };
    let (out_a, grads_a) = run(reference, seeds.0)?;
    let (out_b, grads_b) = run(other, seeds.1)?;
    let output_error = out_a
        .iter()
        .zip(&out_b)
        .map(|(a, b)| (a - b).abs() / a.abs().max(1.0))
        .fold(0f32, f32::max);
    let mut gradient_error = 0f32;
    for ((_, a), (_, b)) in grads_a.iter().zip(&grads_b) {
        let scale = a.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
        let e = a
            .iter()
            .zip(b)
            .map(|(a, b)| (a - b).abs() / scale)
            .fold(0f32, f32::max);
        gradient_error = gradient_error.max(e);
    }
    let finite = output_error.is_finite() && gradient_error.is_finite();
    Ok(CaseResult {
        name: c.name.to_string(),
        output_error,
        gradient_error,
        ok: finite && output_error <= TOLERANCE && gradient_error <= TOLERANCE,
    })
}

fn flat(t: &Tensor) -> candle_core::Result<Vec<f32>> {
    t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()
}

/// The CUDA device, when this build has CUDA and a GPU answers.
pub fn cuda_device() -> Option<Device> {
    if !candle_core::utils::cuda_is_available() {
        return None;
    }
    Device::new_cuda(0).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The comparison itself is sound: CPU against CPU agrees exactly.
    #[test]
    fn cpu_against_cpu_agrees() {
        let results = compare_devices(&Device::Cpu, &Device::Cpu).expect("cases run");
        assert_eq!(results.len(), CASES.len());
        for r in results {
            assert!(r.ok, "{r:?}");
            assert_eq!((r.output_error, r.gradient_error), (0.0, 0.0), "{r:?}");
        }
    }

    /// And it can fail: different weights are caught in every case.
    #[test]
    fn a_different_model_is_caught() {
        for c in CASES {
            let r = compare_case(c, &Device::Cpu, &Device::Cpu, (3, 4)).expect("case runs");
            assert!(!r.ok, "{r:?}");
        }
    }
}
