//! Output buffers zeroed in parallel.
//!
//! `vec![0.0f32; n]` asks the allocator for zeroed memory. A training process keeps its freed
//! activations mapped (see `stad-alloc`), so the allocator cannot hand out fresh zero pages and
//! zeroes the block with one `memset` on the calling thread while the other worker threads
//! wait. [`zeroed`] zeroes large buffers in parallel chunks instead: the same values, written
//! by every thread (what it bought: `docs/cpu-kernels.md`). [`zeroed_chunks`] and
//! [`zeroed_by_channel`] go further for kernels that write their output chunk by chunk: each
//! task zeroes its own chunk just before writing it, so the zeros never make a separate trip
//! to memory.

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

/// A vector of `len` values written chunk by chunk: the task of chunk `i` (`chunk_len`
/// values, the last one shorter when `len` is not a multiple) zeroes it and then calls `f(i,
/// chunk)`. The zeros go into the cache right before `f` overwrites them, instead of out to
/// memory in a separate pass over the whole buffer first (as [`zeroed`] does). Chunks run in
/// parallel, or in order on the calling thread when `parallel` is false (when `f` uses every
/// thread itself).
///
/// ```
/// let v = stad_kernels::buffer::zeroed_chunks(10, 4, true, |i, chunk| {
///     chunk[0] = i as f32 + 1.0;
/// });
/// assert_eq!(v, [1.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 3.0, 0.0]);
/// ```
pub fn zeroed_chunks(
    len: usize,
    chunk_len: usize,
    parallel: bool,
    f: impl Fn(usize, &mut [f32]) + Sync + Send,
) -> Vec<f32> {
    let mut buffer = Vec::with_capacity(len);
    let spare = &mut buffer.spare_capacity_mut()[..len];
    let task = |(i, chunk): (usize, &mut [MaybeUninit<f32>])| f(i, zero(chunk));
    if parallel {
        spare
            .par_chunks_mut(chunk_len.max(1))
            .enumerate()
            .for_each(task);
    } else {
        spare
            .chunks_mut(chunk_len.max(1))
            .enumerate()
            .for_each(task);
    }
    // SAFETY: the capacity is at least `len`, and the chunks cover `spare_capacity_mut()[..len]`
    // exactly; each was zeroed (initialised) by `zero` before `f` saw it.
    unsafe { buffer.set_len(len) };
    buffer
}

/// A `[B, C, P]` buffer written channel by channel, in parallel: `f(c, planes)` gets channel
/// `c`'s `B` planes (`planes[b]` is plane `(b, c)`), each zeroed by the channel's task as in
/// [`zeroed_chunks`], and returns a value; the values come back in channel order.
pub fn zeroed_by_channel<R: Send>(
    [batch, channels, plane]: [usize; 3],
    f: impl Fn(usize, &mut [&mut [f32]]) -> R + Sync + Send,
) -> (Vec<f32>, Vec<R>) {
    let len = batch * channels * plane;
    let mut buffer = Vec::with_capacity(len);
    let mut by_channel: Vec<Vec<&mut [MaybeUninit<f32>]>> =
        (0..channels).map(|_| Vec::with_capacity(batch)).collect();
    if plane > 0 {
        for (i, p) in buffer.spare_capacity_mut()[..len]
            .chunks_exact_mut(plane)
            .enumerate()
        {
            by_channel[i % channels].push(p);
        }
    }
    let results = by_channel
        .into_par_iter()
        .enumerate()
        .map(|(c, planes)| {
            let mut planes: Vec<&mut [f32]> = planes.into_iter().map(zero).collect();
            f(c, &mut planes)
        })
        .collect();
    // SAFETY: the capacity is at least `len`; the planes cover `spare_capacity_mut()[..len]`
    // exactly (every plane belongs to one channel, and `len` is 0 when `plane` is), and each
    // was zeroed by `zero` in its channel's task.
    unsafe { buffer.set_len(len) };
    (buffer, results)
}

/// `chunk` filled with zeros, as initialised values.
fn zero(chunk: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    chunk.fill(MaybeUninit::new(0.0));
    // SAFETY: every element was just initialised, and `MaybeUninit<f32>` has `f32`'s layout.
    unsafe { &mut *(std::ptr::from_mut(chunk) as *mut [f32]) }
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
    fn chunks_and_channels_are_zeroed_and_handed_out_once_in_place() {
        for parallel in [false, true] {
            let v = zeroed_chunks(3 * CHUNK + 5, CHUNK, parallel, |i, chunk| {
                assert!(chunk.iter().all(|&x| x.to_bits() == 0));
                chunk[0] += i as f32 + 1.0;
            });
            assert_eq!(v.len(), 3 * CHUNK + 5);
            for (at, &x) in v.iter().enumerate() {
                let expected = if at % CHUNK == 0 {
                    (at / CHUNK) as f32 + 1.0
                } else {
                    0.0
                };
                assert_eq!(x, expected, "at {at}");
            }
        }
        let (v, sums) = zeroed_by_channel([2, 3, 4], |c, planes| {
            assert_eq!(planes.len(), 2);
            for (b, plane) in planes.iter_mut().enumerate() {
                assert!(plane.iter().all(|&x| x.to_bits() == 0));
                plane[0] = (10 * b + c) as f32;
            }
            c * 100
        });
        assert_eq!(sums, [0, 100, 200]);
        let firsts: Vec<f32> = v.chunks_exact(4).map(|p| p[0]).collect();
        assert_eq!(firsts, [0.0, 1.0, 2.0, 10.0, 11.0, 12.0]);
        assert_eq!(v.iter().filter(|&&x| x != 0.0).count(), 5);
        assert_eq!(zeroed_by_channel([2, 3, 0], |_, _| ()).0.len(), 0);
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
