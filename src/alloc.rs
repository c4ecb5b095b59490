//! Allocator settings for training: a step allocates and frees the same large buffers over and
//! over, and glibc's defaults hand most of them back to the kernel every time.
//!
//! With glibc's defaults, every buffer over 128 KiB (the threshold grows only as such buffers
//! are freed) is its own `mmap`, and free memory at the top of the heap is trimmed back once it
//! exceeds 128 KiB; the next step then page-faults all of it in again, zero-filled. Keeping
//! buffers up to 32 MiB (glibc's largest allowed threshold) in the heap and not trimming it
//! measured, in one `runner bench --no-torch --baseline-exe` run against the same binary without
//! these settings (2 threads, idle machine, 2026-11-28): training 9,619 vs 5,767 img/s for
//! `mnist_cnn`, 4,203 vs 2,706 for `cifar_lenet`, 69.4 vs 61.7 for `vgg16_cifar`; peak resident
//! memory 713 vs 666 MiB for `vgg16_cifar`.

/// Applies the settings. Call it once at start-up, before any thread allocates. On anything but
/// glibc it does nothing.
pub fn tune_for_training() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const MIB: libc::c_int = 1 << 20;
        // SAFETY: `mallopt` only changes allocator parameters; it is called before other
        // threads exist and with values glibc documents (it returns 0 for any it rejects,
        // leaving the default, which is harmless).
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 * MIB);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 1024 * MIB);
            libc::mallopt(libc::M_TOP_PAD, 64 * MIB);
        }
    }
}
