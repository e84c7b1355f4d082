//! Output buffers zeroed in parallel.
//!
//! `vec![0.0f32; n]` asks the allocator for zeroed memory. A training process keeps its freed
//! activations mapped (see `stad-alloc`), so the allocator cannot hand out fresh zero pages and
//! zeroes the block with one `memset` on the calling thread while the other worker threads
//! wait. [`zeroed`] zeroes large buffers in parallel chunks instead: the same values, written
//! by every thread (what it bought: `docs/cpu-kernels.md`).

use std::mem::MaybeUninit;

use rayon::prelude::*;

/// Elements below which one thread zeroes the buffer (a task costs more than the `memset`).
const PARALLEL_FROM: usize = 1 << 16;

/// Elements per parallel zeroing task.
const CHUNK: usize = 1 << 15;

/// A vector of `len` zeros (`vec![0.0; len]`), zeroed in parallel when it is large.
///
/// ```
/// let v = stad_kernels::buffer::zeroed(1 << 20);
/// assert_eq!(v.len(), 1 << 20);
/// assert!(v.iter().all(|&x| x == 0.0));
/// ```
pub fn zeroed(len: usize) -> Vec<f32> {
    if len < PARALLEL_FROM {
        return vec![0.0; len];
    }
    refilled_with_zeros(Vec::new(), len)
}

/// `buffer`'s allocation emptied and refilled with `len` zeros in parallel chunks (grown when
/// its capacity is below `len`).
fn refilled_with_zeros(mut buffer: Vec<f32>, len: usize) -> Vec<f32> {
    buffer.clear();
    buffer.reserve(len);
    buffer.spare_capacity_mut()[..len]
        .par_chunks_mut(CHUNK)
        .for_each(|chunk| chunk.fill(MaybeUninit::new(0.0)));
    // SAFETY: the capacity is at least `len`, and every one of the first `len` elements was
    // initialised above (the chunks cover `spare_capacity_mut()[..len]` exactly).
    unsafe { buffer.set_len(len) };
    buffer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroed_has_the_length_and_only_zeros_on_both_sides_of_the_threshold() {
        for len in [
            0,
            1,
            PARALLEL_FROM - 1,
            PARALLEL_FROM,
            PARALLEL_FROM + CHUNK + 3,
        ] {
            let v = zeroed(len);
            assert_eq!(v.len(), len);
            assert!(v.iter().all(|&x| x.to_bits() == 0), "len {len}");
        }
    }

    #[test]
    fn a_dirty_allocation_is_refilled_with_zeros_in_place() {
        // The memory under the spare capacity holds NaNs, whatever the allocator does: a chunk
        // left unfilled would show.
        let len = 3 * CHUNK + 5;
        let mut dirty = vec![f32::NAN; len + 7];
        let at = dirty.as_mut_ptr();
        let v = refilled_with_zeros(dirty, len);
        assert_eq!(v.as_ptr(), at.cast_const(), "the allocation is reused");
        assert_eq!(v.len(), len);
        assert!(v.iter().all(|&x| x.to_bits() == 0));
    }
}
