//! `runner device-check`: every layer op on CUDA against the CPU, forward and backward, on small
//! inputs; exit 0 when all agree, 2 when one differs or no CUDA device is there.

use std::io::Write;

use anyhow::bail;
use candle_core::Device;

use crate::model::device_check::{compare_devices, cuda_device, TOLERANCE};

/// Runs the verb; returns the exit code.
pub fn run() -> anyhow::Result<i32> {
    let Some(cuda) = cuda_device() else {
        bail!(
            "no CUDA device: {}",
            if cfg!(feature = "cuda") {
                "this build has CUDA, but no GPU answered"
            } else {
                "this build has no CUDA (build with --features cuda)"
            }
        );
    };
    let results = compare_devices(&Device::Cpu, &cuda)?;
    let mut out = super::out::stdout();
    writeln!(
        out,
        "| case | output error | gradient error | within {TOLERANCE:e} |"
    )?;
    writeln!(out, "|---|---:|---:|---|")?;
    for r in &results {
        writeln!(
            out,
            "| {} | {:.2e} | {:.2e} | {} |",
            r.name,
            r.output_error,
            r.gradient_error,
            if r.ok { "yes" } else { "**NO**" }
        )?;
    }
    let bad = results.iter().filter(|r| !r.ok).count();
    writeln!(
        out,
        "{} of {} cases agree between cpu and cuda:0",
        results.len() - bad,
        results.len()
    )?;
    out.finish()?;
    Ok(if bad == 0 {
        super::exit::OK
    } else {
        super::exit::ERROR
    })
}
