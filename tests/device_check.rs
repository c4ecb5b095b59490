//! CUDA against CPU for every layer op (forward and backward), on the GPU machine. Skipped, with
//! a message, where this build has no CUDA or no GPU answers (as on CI).

use candle_core::Device;
use runner::model::device_check::{compare_devices, cuda_device};

#[test]
fn every_op_agrees_between_cpu_and_cuda() {
    let Some(cuda) = cuda_device() else {
        eprintln!("skipped: no CUDA device (build with --features cuda on a GPU machine)");
        return;
    };
    let results = compare_devices(&Device::Cpu, &cuda).expect("cases run");
    let bad: Vec<_> = results.iter().filter(|r| !r.ok).collect();
    assert!(bad.is_empty(), "{bad:#?}");
}
