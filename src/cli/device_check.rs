//! `runner device-check`: every layer op on CUDA against the CPU, forward and backward, on small
//! inputs; exit 0 when all agree, 2 when one differs or no CUDA device is there.

use candle_core::Device;

use crate::model::device_check::{compare_devices, cuda_device, TOLERANCE};

/// Runs the verb; returns the exit code.
pub fn run() -> anyhow::Result<i32> {
    let Some(cuda) = cuda_device() else {
        eprintln!(
            "error: no CUDA device: {}",
            if cfg!(feature = "cuda") {
                "this build has CUDA, but no GPU answered"
            } else {
                "this build has no CUDA (build with --features cuda)"
            }
        );
        return Ok(super::exit::ERROR);
    };
    let results = compare_devices(&Device::Cpu, &cuda)?;
    println!("| case | output error | gradient error | within {TOLERANCE:e} |");
    println!("|---|---:|---:|---|");
    for r in &results {
        println!(
            "| {} | {:.2e} | {:.2e} | {} |",
            r.name,
            r.output_error,
            r.gradient_error,
            if r.ok { "yes" } else { "**NO**" }
        );
    }
    let bad = results.iter().filter(|r| !r.ok).count();
    println!(
        "{} of {} cases agree between cpu and cuda:0",
        results.len() - bad,
        results.len()
    );
    Ok(if bad == 0 {
        super::exit::OK
    } else {
        super::exit::ERROR
    })
}
