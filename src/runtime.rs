//! Process settings for training, applied once at start-up: the allocator, and how long
//! candle's own worker threads spin; and [`in_pool`], where every step runs.
//!
//! **Allocator.** A step allocates and frees the same large buffers over and over: the
//! activations of one layer for a whole batch are tens to hundreds of MiB. The binary's global
//! allocator is mimalloc (`src/main.rs`), set here never to hand freed memory back to the
//! kernel (`purge_delay = -1`) and to back its arenas with 2 MiB pages where the kernel allows
//! (transparent huge pages in `madvise` mode), so that the next step reuses the same pages
//! without faulting them in again. The resident memory stays at the run's peak, which the run
//! needs anyway.
//!
//! glibc cannot do this: a buffer over 32 MiB (its largest `mmap` threshold) is always its own
//! `mmap`, so every large activation was page-faulted in zero-filled and unmapped again with a
//! TLB shoot-down on every step; `sys` time was a quarter of the CPU time of an `airbench94`
//! step. Measured (see BENCHMARKS.md, "Allocator") against the same code with glibc and the
//! earlier `mallopt` settings (buffers up to 32 MiB kept in the heap, no trimming).
//!
//! The `mallopt` settings before that measured, in one `runner bench --no-torch --baseline-exe`
//! run against glibc's defaults (2 threads, idle machine, 2026-11-28): training 9,619 vs 5,767
//! img/s for `mnist_cnn`, 4,203 vs 2,706 for `cifar_lenet`, 69.4 vs 61.7 for `vgg16_cifar`.
//!
//! **Spinning.** candle 0.11 runs its large elementwise ops (gradient sums, for one) on a pool
//! of its own beside rayon's, whose threads spin 25,000 times after each op before sleeping. On
//! two cores that spinning takes a core from the rayon workers running the next kernel: 7.7% of
//! all samples of a `cifar_lenet` training profile were that thread's spin loop. Spinning 1,000
//! times measured, in one `runner bench --no-torch --baseline-exe` run (2 threads, 2026-11-28),
//! 5,570 vs 4,691 img/s training `cifar_lenet` and 10,851 vs 9,989 for `mnist_cnn`; `vgg16_cifar`
//! 83.5 vs 85.8 (noise). `CANDLE_BARRIER_POOL_SPIN_LIMIT` set by the user is left alone.

/// Spins of candle's pool threads before they sleep (candle's default: 25,000).
const CANDLE_SPIN_LIMIT: &str = "1000";

/// `mi_option_purge_delay` of mimalloc 3's `mimalloc.h` (the sys crate names no constant for
/// it): how many milliseconds freed memory waits before it goes back to the kernel; -1 never.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Applies the settings. Call it at the very start of `main`, before any other thread exists.
pub fn tune_for_training() {
    if std::env::var_os("CANDLE_BARRIER_POOL_SPIN_LIMIT").is_none() {
        // Sound: no other thread exists yet to read the environment concurrently.
        std::env::set_var("CANDLE_BARRIER_POOL_SPIN_LIMIT", CANDLE_SPIN_LIMIT);
    }
    // mimalloc reads `MIMALLOC_<OPTION>` itself; one the user set is left alone.
    let options = [
        ("MIMALLOC_PURGE_DELAY", MI_OPTION_PURGE_DELAY, -1),
        (
            "MIMALLOC_ALLOW_LARGE_OS_PAGES",
            libmimalloc_sys::mi_option_large_os_pages,
            1,
        ),
    ];
    for (env, option, value) in options {
        if std::env::var_os(env).is_none() {
            // SAFETY: `mi_option_set` only changes a mimalloc parameter, to a value its header
            // documents; it applies to whatever mimalloc allocates from then on.
            unsafe { libmimalloc_sys::mi_option_set(option, value) };
        }
    }
}

/// Runs `work` on one of rayon's worker threads (inline when already on one), and returns its
/// result. Training and evaluation steps run this way.
///
/// **Why.** A step is a few dozen parallel kernels. Started from the main thread, each one is
/// injected into rayon's pool while the main thread sleeps, and each end wakes the main thread
/// again; on two cores the woken threads and the still-spinning workers fight for the cores, so
/// some steps take half again as long as the median. Started on a worker, the kernels fork and
/// join inside the pool and the main thread sleeps once per step. Measured in one interleaved
/// run (`runner bench --child`, 2 threads, AMD EPYC with AVX2, 2026-12-02, 3 rounds), mean step
/// time from the main thread against on a worker: `mnist_cnn` 6.78-7.65 ms against 5.96-6.17 ms,
/// `cifar_lenet` 13.95-14.92 against 12.83-13.41; the 90th percentile dropped from 1.3-1.7x the
/// median to 1.1-1.2x.
pub fn in_pool<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    rayon::scope(|_| work())
}
