//! The global allocator of stad's binaries, benches and examples.
//!
//! A training step frees and allocates again activations of tens of MiB (a 224² feature map
//! of a batch of 32 is 100 MiB). The system allocator unmaps every block over 32 MiB and maps
//! it back on the next step; mimalloc keeps them, but by default it still *purges* memory that
//! stayed free for a while (returns its pages to the kernel), and the kernel then zeroes each
//! page again on first touch. On a bottle epoch (ResNet18, 224², batch 32) that was ≈ 230 000
//! page faults and ≈ 10 % of the CPU time in the kernel's `clear_page`.
//!
//! [`StadAllocator`] is mimalloc with purging turned off (`purge_delay = -1`): freed memory
//! stays mapped and is reused, so the process keeps its peak footprint until it exits, which
//! a training run reaches in its first step anyway. Libraries never set an allocator; only
//! the binaries do:
//!
//! ```
//! #[global_allocator]
//! static ALLOCATOR: stad_alloc::StadAllocator = stad_alloc::StadAllocator;
//!
//! fn main() {
//!     let activation = vec![0.0f32; 32 * 64 * 112 * 112];
//!     drop(activation);
//!     assert_eq!(stad_alloc::purge_delay_ms(), -1, "purging is off");
//! }
//! ```

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, Ordering};

use libmimalloc_sys::{mi_option_get, mi_option_set, mi_option_t};
use mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc 3's `mimalloc.h` (the `v3` sources libmimalloc-sys
/// builds by default; its Rust bindings do not name this option). The unit test checks the
/// number against the option's documented default.
const MI_OPTION_PURGE_DELAY: mi_option_t = 15;

/// The `purge_delay` value meaning "never purge".
const NEVER_PURGE: std::os::raw::c_long = -1;

static CONFIGURED: AtomicBool = AtomicBool::new(false);

/// mimalloc that never returns freed memory to the kernel (see the crate docs).
///
/// The first allocation of the process turns purging off, so no call is needed in `main`
/// (`realloc` and `dealloc` only see blocks an allocation made, so they need no check).
#[derive(Debug, Clone, Copy, Default)]
pub struct StadAllocator;

impl StadAllocator {
    #[inline]
    fn configure() {
        if !CONFIGURED.load(Ordering::Relaxed) {
            keep_freed_memory();
        }
    }
}

/// Turns mimalloc's purging off for this process (idempotent).
fn keep_freed_memory() {
    // SAFETY: `mi_option_set` stores an integer in mimalloc's option table; it does not
    // allocate, so it may run inside the allocator.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, NEVER_PURGE) };
    CONFIGURED.store(true, Ordering::Relaxed);
}

/// mimalloc's `purge_delay` in milliseconds now (`-1`: never purge).
pub fn purge_delay_ms() -> std::os::raw::c_long {
    // SAFETY: reads one entry of mimalloc's option table.
    unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) }
}

// SAFETY: every method forwards to `MiMalloc`, which upholds `GlobalAlloc`'s contract.
unsafe impl GlobalAlloc for StadAllocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::configure();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { MiMalloc.alloc(layout) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::configure();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { MiMalloc.alloc_zeroed(layout) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { MiMalloc.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One test, in order (the option is process-wide): the option number is mimalloc 3's
    /// `purge_delay`, since before it is set it reads the documented default (1000 ms) unless
    /// the environment overrides it (the test binary runs with the system allocator, so nothing
    /// has set it); the first allocation through [`StadAllocator`] sets it to -1; blocks
    /// allocate, grow and free.
    #[test]
    fn first_allocation_turns_purging_off() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(purge_delay_ms(), 1000, "mimalloc's default purge delay");
        }
        let layout = Layout::from_size_align(64 << 20, 64).unwrap();
        // SAFETY: a non-zero layout; the block is written within bounds and freed once.
        unsafe {
            let p = StadAllocator.alloc_zeroed(layout);
            assert!(!p.is_null());
            assert_eq!(purge_delay_ms(), -1);
            assert_eq!(*p.add(layout.size() - 1), 0);
            *p = 7;
            let q = StadAllocator.realloc(p, layout, layout.size() * 2);
            assert_eq!(*q, 7);
            StadAllocator.dealloc(q, Layout::from_size_align(layout.size() * 2, 64).unwrap());
        }
    }
}
