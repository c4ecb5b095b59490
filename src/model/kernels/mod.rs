//! CPU kernels as candle custom ops, for the layers where candle's own CPU implementation is
//! slow: convolution (direct for few input channels, Winograd for 3x3 layers, im2col + gemm
//! otherwise), max-pooling, ReLU, GELU and training-mode BatchNorm.
//!
//! Each op has a forward and a backward pass and falls back to candle's ops (through the
//! callers in [`super::ops`]) for anything but contiguous `f32` tensors on the CPU. Work is
//! split over rayon's pool (the one candle uses); every reduction sums in a fixed order that
//! does not depend on the number of threads, so runs repeat bit for bit.
//!
//! The crate is built for baseline x86-64 (SSE2), so that one binary runs on any x86-64 CPU.
//! The loops that vectorise (direct convolution, transforms, im2col, the conv epilogue, the
//! BatchNorm affine, ReLU, the optimizers' updates) are compiled again for x86-64-v3 (AVX2 +
//! FMA) and x86-64-v4 (AVX-512) by `#[multiversion(targets = "simd")]` and the widest the CPU
//! has is picked at run time (gemm does the same for its own microkernels). Rust never
//! contracts `a * b + c` into an FMA and LLVM does not reorder float sums, so every version
//! gives the same bits; where a kernel wants FMAs it asks for them (`f32::mul_add`, rounded
//! once in every version: the baseline one calls libm's `fmaf`).

pub(crate) mod batch_norm;
pub(crate) mod conv;
pub(crate) mod direct;
pub(crate) mod gelu;
pub(crate) mod pool;
pub(crate) mod relu;
pub(crate) mod winograd;

#[cfg(test)]
mod tests;

use candle_core::{bail, CpuStorage, DType, Device, Layout, Result, Storage, Tensor};
use multiversion::multiversion;
use rayon::prelude::*;

/// Whether `t` can go through the custom kernels: an `f32` tensor on the CPU.
pub(crate) fn supported(t: &Tensor) -> bool {
    t.dtype() == DType::F32 && matches!(t.device(), Device::Cpu)
}

/// The `f32` values of a contiguous CPU storage, as laid out by `layout`.
pub(crate) fn slice<'a>(s: &'a CpuStorage, layout: &Layout) -> Result<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => bail!("custom kernel: input is not contiguous"),
    }
}

/// Runs `f` on the values of `t` (made contiguous first).
pub(crate) fn with_values<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(s) => f(slice(s, layout)?),
        _ => bail!("custom kernel: tensor is not on the CPU"),
    }
}

/// A tensor on the CPU from `values` and a shape.
pub(crate) fn tensor(values: Vec<f32>, shape: &[usize]) -> Result<Tensor> {
    Tensor::from_vec(values, shape, &Device::Cpu)
}

/// Elementwise work below this many values stays on one thread.
pub(crate) const PAR_MIN: usize = 1 << 15;

/// The elementwise kernels' loop (ReLU, GELU): `f` over matching chunks of `a`, `b` and `out`, in parallel for large tensors.
pub(crate) fn zip_map(a: &[f32], b: &[f32], out: &mut [f32], f: impl Fn(f32, f32) -> f32 + Sync) {
    let run = |((o, a), b): ((&mut [f32], &[f32]), &[f32])| map_chunk(o, a, b, &f);
    if out.len() >= PAR_MIN {
        out.par_chunks_mut(PAR_MIN / 4)
            .zip(a.par_chunks(PAR_MIN / 4))
            .zip(b.par_chunks(PAR_MIN / 4))
            .for_each(run);
    } else {
        run(((out, a), b));
    }
}

/// `out[i] = f(a[i], b[i])`, compiled for the wider vector ISAs too (picked at run time).
#[multiversion(targets = "simd")]
fn map_chunk(out: &mut [f32], a: &[f32], b: &[f32], f: &(impl Fn(f32, f32) -> f32 + Sync)) {
    for ((o, a), b) in out.iter_mut().zip(a).zip(b) {
        *o = f(*a, *b);
    }
}
