//! Seeded mutation fuzzing of every loader that reads a user's file (issue 14; see
//! `docs/fuzzing.md`).
//!
//! Each loader starts from real seed files (MVTec AD `bottle` images and masks, also re-encoded
//! small in every supported format; the shared weight fixtures and small subsets of them; a
//! detector, checkpoints, a `run.json` and an evaluation JSON written by this code) and runs
//! deterministic mutations of them: bit flips, bytes set to 0x00/0xFF/random, truncations,
//! inserted/deleted/duplicated ranges, 2/4/8-byte size fields overwritten with huge values,
//! structural JSON edits, and for the `STADCKPT` container also mutations behind a recomputed
//! checksum. Every case must return `Ok` or a typed error: no panic (each case runs under
//! `catch_unwind`), no abort, and no block above [`ALLOC_LIMIT`] granted (this binary's global
//! allocator records the largest request, and refuses any above [`HARD_SINGLE`]: a loader that
//! asks for such a block must survive the refusal, as it would when the system refuses, and is
//! counted as "refused, survived").
//!
//! Environment:
//! - `STAD_FUZZ_SCALE=F`: run `F` times the default number of cases of every loader (default
//!   1; e.g. 20 for a long run);
//! - `STAD_FUZZ_SEED=N`: another base seed (default `0x5eed_f022`);
//! - `STAD_FUZZ_ONLY=LOADER:CASE`: replay one case (as printed in a failure) and nothing else.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use image::{DynamicImage, ImageFormat};
use serde_json::Value;
use stad::backbones::{
    Backbone, BackboneConfig, MobileNetV2Config, ResNetArch, ResNetConfig, ResNetStage, StateDict,
};
use stad::backend::{Cpu, CpuAutodiff};
use stad::checkpoint::CheckpointFile;
use stad::data::{Dataset, ImageSource, Label, MaskSource, Sample, SplitMix64};
use stad::{Detector, MethodConfig, ModelConfig, RunDir, Silent, TeacherWeights};
use stad::{TrainConfig, train};
use stad_data::preprocess::{PreprocessConfig, decode_bytes, image_to_chw, mask_to_binary};

// ---------------------------------------------------------------------------------------------
// Allocation tracking

/// The largest single allocation a case may request.
const ALLOC_LIMIT: usize = 1 << 30;
/// Above this a request is refused at once (the process then aborts, after naming the case),
/// so that a runaway size field cannot take the machine's memory.
const HARD_SINGLE: usize = 4 << 30;
/// Refused likewise when the live heap would grow past this.
const HARD_LIVE: usize = 8 << 30;

static LARGEST: AtomicUsize = AtomicUsize::new(0);
/// The largest request that was granted (a refused one must be survived: the loader gets a
/// null block and has to turn it into an error, as it does when the system refuses).
static LARGEST_GRANTED: AtomicUsize = AtomicUsize::new(0);
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK_LIVE: AtomicUsize = AtomicUsize::new(0);
/// The case running now, for the message of a refused allocation.
static CASE_LABEL: Mutex<String> = Mutex::new(String::new());

/// `System`, recording the largest request and the live-heap peak.
struct Tracking;

impl Tracking {
    /// Records a request of `size` bytes growing the heap by `grow`; `false`: refuse it.
    fn note(size: usize, grow: usize) -> bool {
        LARGEST.fetch_max(size, Ordering::Relaxed);
        let live = LIVE.fetch_add(grow, Ordering::Relaxed).saturating_add(grow);
        if size > HARD_SINGLE || live > HARD_LIVE {
            LIVE.fetch_sub(grow, Ordering::Relaxed);
            refused(size);
            return false;
        }
        PEAK_LIVE.fetch_max(live, Ordering::Relaxed);
        LARGEST_GRANTED.fetch_max(size, Ordering::Relaxed);
        true
    }
}

/// Names the case whose allocation is refused (no allocation here: fixed buffers only).
fn refused(size: usize) {
    let mut digits = [0u8; 20];
    let mut n = size;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let mut err = std::io::stderr();
    let _ = err.write_all(b"\nfuzz_loaders: refusing an allocation of ");
    let _ = err.write_all(&digits[i..]);
    let _ = err.write_all(b" bytes (limit exceeded) in case ");
    match CASE_LABEL.try_lock() {
        Ok(label) => {
            let _ = err.write_all(label.as_bytes());
        }
        Err(_) => {
            let _ = err.write_all(b"<label locked>");
        }
    }
    let _ = err.write_all(b"\n");
}

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !Self::note(layout.size(), layout.size()) {
            return std::ptr::null_mut();
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !Self::note(layout.size(), layout.size()) {
            return std::ptr::null_mut();
        }
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = layout.size();
        if new_size > old {
            if !Self::note(new_size, new_size - old) {
                return std::ptr::null_mut();
            }
        } else {
            LIVE.fetch_sub(old - new_size, Ordering::Relaxed);
        }
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if p.is_null() {
            // The old block stays allocated.
            if new_size > old {
                LIVE.fetch_sub(new_size - old, Ordering::Relaxed);
            } else {
                LIVE.fetch_add(old - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Tracking = Tracking;

// ---------------------------------------------------------------------------------------------
// Harness

/// The loaders' tests share the allocation counters: they run one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn env_scale() -> f64 {
    std::env::var("STAD_FUZZ_SCALE")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(1.0)
}

fn base_seed() -> u64 {
    std::env::var("STAD_FUZZ_SEED")
        .ok()
        .and_then(|s| {
            s.strip_prefix("0x")
                .map(|h| u64::from_str_radix(h, 16).ok())
                .unwrap_or_else(|| s.parse().ok())
        })
        .unwrap_or(0x5eed_f022)
}

/// `Some((loader, case))` when `STAD_FUZZ_ONLY=LOADER:CASE` asks for one case.
fn only() -> Option<(String, usize)> {
    let s = std::env::var("STAD_FUZZ_ONLY").ok()?;
    let (l, c) = s.rsplit_once(':')?;
    Some((l.to_string(), c.parse().ok()?))
}

/// The generator of case `case` of `loader` (independent of every other case).
fn case_rng(loader: &str, case: usize) -> SplitMix64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ base_seed();
    for &b in loader.as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut r = SplitMix64::new(h ^ (case as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    r.next_u64();
    r
}

thread_local! {
    static IN_CASE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static LAST_PANIC: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Panics inside a case are recorded (message and location) instead of printed.
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_CASE.with(|c| c.get()) {
                let msg = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "<non-string panic>".into());
                let loc = info
                    .location()
                    .map(|l| format!("{}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{msg} at {loc}")));
            } else {
                default(info);
            }
        }));
    });
}

/// What one case's load gave.
enum Outcome {
    Ok,
    /// A typed error, with a short kind for the statistics.
    Err(String),
}

/// Statistics of one loader.
struct Stats {
    loader: &'static str,
    cases: usize,
    ok: usize,
    typed_errors: std::collections::BTreeMap<String, usize>,
    failures: Vec<String>,
    largest_alloc: usize,
    largest_alloc_case: String,
    peak_live_growth: usize,
    /// Cases that asked for a block above [`HARD_SINGLE`], were refused it, and survived.
    refused_and_survived: usize,
    slowest: (Duration, String),
    started: Instant,
}

impl Stats {
    fn new(loader: &'static str) -> Self {
        install_panic_hook();
        Stats {
            loader,
            cases: 0,
            ok: 0,
            typed_errors: Default::default(),
            failures: Vec::new(),
            largest_alloc: 0,
            largest_alloc_case: String::new(),
            peak_live_growth: 0,
            refused_and_survived: 0,
            slowest: (Duration::ZERO, String::new()),
            started: Instant::now(),
        }
    }

    /// The number of cases to run: `default × STAD_FUZZ_SCALE`, or the one case of
    /// `STAD_FUZZ_ONLY` (an empty range when it names another loader).
    fn cases(&self, default: usize) -> Range<usize> {
        match only() {
            Some((l, c)) if l == self.loader => c..c + 1,
            Some(_) => 0..0,
            None => 0..((default as f64 * env_scale()).round() as usize).max(1),
        }
    }

    /// Runs `load` as case `case`, described by `what`.
    fn run(&mut self, case: usize, what: &str, load: impl FnOnce() -> Outcome) {
        let label = format!("{}:{case} [{what}]", self.loader);
        *CASE_LABEL.lock().unwrap_or_else(|e| e.into_inner()) = label.clone();
        LARGEST.store(0, Ordering::Relaxed);
        LARGEST_GRANTED.store(0, Ordering::Relaxed);
        let live0 = LIVE.load(Ordering::Relaxed);
        PEAK_LIVE.store(live0, Ordering::Relaxed);
        IN_CASE.with(|c| c.set(true));
        let t = Instant::now();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(load));
        let dt = t.elapsed();
        IN_CASE.with(|c| c.set(false));
        let largest = LARGEST.load(Ordering::Relaxed);
        let granted = LARGEST_GRANTED.load(Ordering::Relaxed);
        let growth = PEAK_LIVE.load(Ordering::Relaxed).saturating_sub(live0);
        self.cases += 1;
        if largest > self.largest_alloc {
            self.largest_alloc = largest;
            self.largest_alloc_case = label.clone();
        }
        self.peak_live_growth = self.peak_live_growth.max(growth);
        if dt > self.slowest.0 {
            self.slowest = (dt, label.clone());
        }
        match r {
            Ok(Outcome::Ok) => self.ok += 1,
            Ok(Outcome::Err(kind)) => *self.typed_errors.entry(kind).or_default() += 1,
            Err(_) => {
                let msg = LAST_PANIC
                    .with(|p| p.borrow_mut().take())
                    .unwrap_or_default();
                self.failures.push(format!("PANIC {label}: {msg}"));
            }
        }
        if granted > ALLOC_LIMIT {
            self.failures.push(format!(
                "ALLOCATION {label}: one granted block of {granted} bytes (limit {ALLOC_LIMIT})"
            ));
        }
        if largest > HARD_SINGLE {
            // Refused, and survived: the loader asked for capacity fallibly and turned the
            // refusal into an error, as it would when the system refuses.
            self.refused_and_survived += 1;
        }
    }

    /// Prints the figures and fails on any panic or over-limit allocation.
    fn finish(self) {
        let wall = self.started.elapsed();
        let survived = self.cases - self.failures.len().min(self.cases);
        eprintln!(
            "fuzz {:<18} cases {:>5}  survived {:>5}  ok {:>5}  typed errors {:?}\n\
             {:<23} largest allocation request {} ({}), refused and survived {}, peak live growth {}, wall {:.1} s, slowest case {:.0} ms ({})",
            self.loader,
            self.cases,
            survived,
            self.ok,
            self.typed_errors,
            "",
            mib(self.largest_alloc),
            self.largest_alloc_case,
            self.refused_and_survived,
            mib(self.peak_live_growth),
            wall.as_secs_f64(),
            self.slowest.0.as_secs_f64() * 1e3,
            self.slowest.1,
        );
        // Panics grouped by where they happen (one example each).
        let mut by_site: std::collections::BTreeMap<String, (usize, String)> = Default::default();
        for f in &self.failures {
            let site = f
                .rsplit_once(" at ")
                .map_or("allocation", |(_, s)| s)
                .to_string();
            by_site.entry(site).or_insert((0, f.clone())).0 += 1;
        }
        for (site, (n, example)) in &by_site {
            eprintln!("{:<23} {n} failure(s) at {site}, e.g. {example:.600}", "");
        }
        assert!(
            self.failures.is_empty(),
            "{}: {} of {} cases failed (replay one with STAD_FUZZ_ONLY=LOADER:CASE):\n{}",
            self.loader,
            self.failures.len(),
            self.cases,
            self.failures
                .iter()
                .take(25)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

fn mib(bytes: usize) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

/// The error kind: the Debug text up to the first space, `(` or `{`.
fn kind_of(e: &impl std::fmt::Debug) -> String {
    let s = format!("{e:?}");
    let mut end = s.len();
    for (i, c) in s.char_indices() {
        if c == ' ' || c == '{' {
            end = i;
            break;
        }
        if c == '(' {
            // One level deeper: `Checkpoint(Corrupt { .. })` -> `Checkpoint(Corrupt`.
            if let Some(j) = s[i + 1..].find([' ', '{', '(', ')']) {
                end = i + 1 + j;
            }
            break;
        }
    }
    s[..end].to_string()
}

fn outcome<T, E: std::fmt::Debug>(r: Result<T, E>) -> Outcome {
    match r {
        Ok(_) => Outcome::Ok,
        Err(e) => Outcome::Err(kind_of(&e)),
    }
}

// ---------------------------------------------------------------------------------------------
// Mutator

fn below(rng: &mut SplitMix64, n: usize) -> usize {
    if n == 0 {
        0
    } else {
        rng.below(n as u64) as usize
    }
}

/// A position in `0..len` (`0..=len` with `end`), inside one of `focus` nine times in ten.
fn pick_pos(rng: &mut SplitMix64, len: usize, focus: &[Range<usize>], end: bool) -> usize {
    let n = len + usize::from(end);
    if n == 0 {
        return 0;
    }
    if !focus.is_empty() && below(rng, 10) < 9 {
        let r = &focus[below(rng, focus.len())];
        let (a, b) = (r.start.min(len), r.end.min(n));
        if b > a {
            return a + below(rng, b - a);
        }
    }
    below(rng, n)
}

/// Values that size and count fields are tested with.
fn interesting(rng: &mut SplitMix64, len: usize) -> u64 {
    let v: [u64; 18] = [
        0,
        1,
        0x7f,
        0x80,
        0xff,
        0x7fff,
        0xffff,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_ffff,
        1 << 40,
        i64::MAX as u64,
        u64::MAX,
        u64::MAX - 1,
        len as u64,
        len.saturating_sub(1) as u64,
        len as u64 + 1,
        (len as u64) << 1,
    ];
    v[below(rng, v.len())]
}

/// Applies 1–4 random byte-level mutations to `data`; returns their description.
fn mutate_bytes(rng: &mut SplitMix64, data: &mut Vec<u8>, focus: &[Range<usize>]) -> String {
    let n = 1 + below(rng, 4);
    let mut what = Vec::with_capacity(n);
    for _ in 0..n {
        what.push(mutate_once(rng, data, focus));
    }
    what.join("; ")
}

fn mutate_once(rng: &mut SplitMix64, data: &mut Vec<u8>, focus: &[Range<usize>]) -> String {
    let len = data.len();
    if len == 0 {
        let b = rng.next_u64() as u8;
        data.push(b);
        return format!("push {b:#04x}");
    }
    match below(rng, 11) {
        0 | 1 => {
            let at = pick_pos(rng, len, focus, false);
            let bit = below(rng, 8);
            data[at] ^= 1 << bit;
            format!("flip bit {bit} @{at}")
        }
        2 => {
            let at = pick_pos(rng, len, focus, false);
            let v = match below(rng, 3) {
                0 => 0x00,
                1 => 0xff,
                _ => rng.next_u64() as u8,
            };
            data[at] = v;
            format!("set @{at}={v:#04x}")
        }
        3 => {
            let to = pick_pos(rng, len, focus, false);
            data.truncate(to);
            format!("truncate to {to}")
        }
        4 => {
            let at = pick_pos(rng, len, focus, true);
            let n = 1 + below(rng, 64);
            let ins: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
            data.splice(at..at, ins);
            format!("insert {n} random @{at}")
        }
        5 => {
            let at = pick_pos(rng, len, focus, false);
            let n = (1 + below(rng, 256)).min(len - at);
            data.drain(at..at + n);
            format!("delete {n} @{at}")
        }
        6 => {
            let from = pick_pos(rng, len, focus, false);
            let n = (1 + below(rng, 256)).min(len - from);
            let to = pick_pos(rng, len, focus, true);
            let chunk = data[from..from + n].to_vec();
            data.splice(to..to, chunk);
            format!("duplicate {n} from @{from} to @{to}")
        }
        7 | 8 => {
            let width = [2usize, 4, 4, 8][below(rng, 4)];
            let at = pick_pos(rng, len, focus, false).min(len.saturating_sub(width));
            let big_endian = below(rng, 2) == 1;
            let v = interesting(rng, len);
            let bytes = if big_endian {
                v.to_be_bytes()[8 - width..].to_vec()
            } else {
                v.to_le_bytes()[..width].to_vec()
            };
            let w = width.min(len - at);
            data[at..at + w].copy_from_slice(&bytes[..w]);
            format!(
                "size field u{} {} @{at}={v:#x}",
                width * 8,
                if big_endian { "BE" } else { "LE" }
            )
        }
        9 => {
            // Nudge the little-endian u32 there.
            let at = pick_pos(rng, len, focus, false).min(len.saturating_sub(4));
            if len - at < 4 {
                data[at] = data[at].wrapping_add(1);
                return format!("increment @{at}");
            }
            let old = u32::from_le_bytes(data[at..at + 4].try_into().unwrap());
            let d = 1 + below(rng, 16) as u32;
            let new = if below(rng, 2) == 0 {
                old.wrapping_add(d)
            } else {
                old.wrapping_sub(d)
            };
            data[at..at + 4].copy_from_slice(&new.to_le_bytes());
            format!("u32 LE @{at} {old}->{new}")
        }
        _ => {
            let at = pick_pos(rng, len, focus, false);
            let n = (1 + below(rng, 32)).min(len - at);
            for b in &mut data[at..at + n] {
                *b = rng.next_u64() as u8;
            }
            format!("randomise {n} @{at}")
        }
    }
}

/// Replacement values of the JSON mutator.
fn json_replacement(rng: &mut SplitMix64, old: &Value) -> (Value, String) {
    let v = match below(rng, 20) {
        0 => Value::Null,
        1 => Value::Bool(true),
        2 => Value::from(-1),
        3 => Value::from(u64::MAX),
        4 => Value::from(i64::MIN),
        5 => Value::from(1e308),
        6 => Value::from(-1e308),
        7 => Value::from("NaN"),
        8 => Value::from("inf"),
        9 => Value::from(""),
        10 => Value::from("x".repeat(10_000)),
        11 => Value::Array(Vec::new()),
        12 => Value::Object(Default::default()),
        13 => {
            let mut v = Value::from(0);
            for _ in 0..100 {
                v = Value::Array(vec![v]);
            }
            v
        }
        14 => Value::from(0.5),
        15 => Value::from(1u64 << 53),
        16 => Value::Array(vec![Value::from(0); 1000]),
        // Type swaps.
        17 => match old {
            Value::Number(n) => Value::from(n.to_string()),
            Value::String(s) => s
                .parse::<f64>()
                .ok()
                .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number))
                .unwrap_or(Value::from(s.len())),
            Value::Array(a) => Value::Object(
                a.iter()
                    .enumerate()
                    .map(|(i, v)| (i.to_string(), v.clone()))
                    .collect(),
            ),
            Value::Object(o) => Value::Array(o.values().cloned().collect()),
            Value::Bool(b) => Value::from(u8::from(*b)),
            Value::Null => Value::from(0),
        },
        18 => match old {
            Value::Number(n) => match n.as_f64() {
                Some(f) => serde_json::Number::from_f64(-f * 1e6)
                    .map(Value::Number)
                    .unwrap_or(Value::Null),
                None => Value::Null,
            },
            Value::Array(a) => {
                let mut a = a.clone();
                a.extend(a.clone());
                Value::Array(a)
            }
            other => other.clone(),
        },
        _ => match old {
            Value::Array(a) if !a.is_empty() => Value::Array(a[..a.len() - 1].to_vec()),
            Value::Object(o) => {
                let mut o = o.clone();
                o.insert("unexpected_key".into(), Value::from(1));
                Value::Object(o)
            }
            _ => Value::from(7),
        },
    };
    let desc = format!("{:.60}", v.to_string());
    (v, desc)
}

/// Every node's path (object keys and array indices).
fn json_paths(v: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(prefix.clone());
    match v {
        Value::Object(o) => {
            for (k, c) in o {
                prefix.push(k.clone());
                json_paths(c, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate().take(64) {
                prefix.push(i.to_string());
                json_paths(c, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn json_at<'a>(v: &'a mut Value, path: &[String]) -> &'a mut Value {
    path.iter().fold(v, |v, k| match v {
        Value::Object(o) => o.get_mut(k).expect("path from json_paths"),
        Value::Array(a) => &mut a[k.parse::<usize>().expect("index")],
        _ => unreachable!("path from json_paths"),
    })
}

/// 1–3 structural edits of a JSON document (delete a key, replace a value, swap a type), then
/// sometimes a textual one (`1e999`, `-0`, 2⁶⁴, `NaN` in place of a number), then sometimes
/// byte mutations.
fn mutate_json(rng: &mut SplitMix64, seed: &Value) -> (Vec<u8>, String) {
    let mut v = seed.clone();
    let mut what = Vec::new();
    for _ in 0..1 + below(rng, 3) {
        let mut paths = Vec::new();
        json_paths(&v, &mut Vec::new(), &mut paths);
        let path = paths[below(rng, paths.len())].clone();
        let name = format!("/{}", path.join("/"));
        if !path.is_empty() && below(rng, 4) == 0 {
            let (last, parent) = path.split_last().expect("not empty");
            match json_at(&mut v, parent) {
                Value::Object(o) => {
                    o.remove(last);
                }
                Value::Array(a) => {
                    a.remove(last.parse::<usize>().expect("index"));
                }
                _ => {}
            }
            what.push(format!("delete {name}"));
        } else {
            let node = json_at(&mut v, &path);
            let (new, desc) = json_replacement(rng, node);
            *node = new;
            what.push(format!("{name} = {desc}"));
        }
    }
    let mut text = if below(rng, 2) == 0 {
        serde_json::to_vec(&v).expect("serialises")
    } else {
        serde_json::to_vec_pretty(&v).expect("serialises")
    };
    if below(rng, 5) == 0 {
        // Replace one number token's text.
        let starts: Vec<usize> = (0..text.len())
            .filter(|&i| {
                text[i].is_ascii_digit()
                    && (i == 0 || matches!(text[i - 1], b' ' | b':' | b'[' | b','))
            })
            .collect();
        if !starts.is_empty() {
            let s = starts[below(rng, starts.len())];
            let e = (s..text.len())
                .find(|&i| !matches!(text[i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'-' | b'+'))
                .unwrap_or(text.len());
            let tok = [
                "1e999",
                "-0",
                "18446744073709551616",
                "NaN",
                "1e-400",
                "00",
                "-",
            ][below(rng, 7)];
            text.splice(s..e, tok.bytes());
            what.push(format!("number token @{s} -> {tok}"));
        }
    }
    if below(rng, 4) == 0 {
        let len = text.len();
        what.push(mutate_bytes(
            rng,
            &mut text,
            std::slice::from_ref(&(0..len)),
        ));
    }
    (text, what.join("; "))
}

// ---------------------------------------------------------------------------------------------
// Seeds

fn bottle() -> PathBuf {
    stad_testutil::shared_dir().join("data/mvtec_ad/bottle")
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read seed {}: {e}", path.display()))
}

fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format)
        .unwrap_or_else(|e| panic!("encode {format:?}: {e}"));
    out.into_inner()
}

fn ext(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Png => "png",
        ImageFormat::Jpeg => "jpg",
        ImageFormat::Tiff => "tif",
        ImageFormat::Bmp => "bmp",
        _ => "bin",
    }
}

/// Image seeds: `(name, extension, bytes)`. Two full-size bottle PNGs and the first one
/// resized to 48² and encoded in every format and several colour types.
fn image_seeds() -> Vec<(String, &'static str, Vec<u8>)> {
    let good = bottle().join("train/good");
    let a = read(&good.join("000.png"));
    let b = read(&bottle().join("test/broken_large/000.png"));
    let img = image::load_from_memory(&a).expect("bottle PNG decodes");
    let small = img.resize_exact(48, 48, image::imageops::FilterType::Triangle);
    let rgb = DynamicImage::ImageRgb8(small.to_rgb8());
    let gray = DynamicImage::ImageLuma8(small.to_luma8());
    let gray16 = DynamicImage::ImageLuma16(small.to_luma16());
    let rgba = DynamicImage::ImageRgba8(small.to_rgba8());
    let rgb16 = DynamicImage::ImageRgb16(small.to_rgb16());
    let mut seeds = vec![
        ("bottle-train-000.png (900²)".to_string(), "png", a),
        ("bottle-broken_large-000.png (900²)".to_string(), "png", b),
    ];
    for (name, im, format) in [
        ("rgb8", &rgb, ImageFormat::Png),
        ("luma8", &gray, ImageFormat::Png),
        ("luma16", &gray16, ImageFormat::Png),
        ("rgba8", &rgba, ImageFormat::Png),
        ("rgb8", &rgb, ImageFormat::Jpeg),
        ("luma8", &gray, ImageFormat::Jpeg),
        ("rgb8", &rgb, ImageFormat::Tiff),
        ("rgb16", &rgb16, ImageFormat::Tiff),
        ("luma8", &gray, ImageFormat::Tiff),
        ("rgb8", &rgb, ImageFormat::Bmp),
        ("rgba8", &rgba, ImageFormat::Bmp),
    ] {
        seeds.push((
            format!("48² {name}.{}", ext(format)),
            ext(format),
            encode(im, format),
        ));
    }
    seeds
}

/// The checkpoint container's checksum (FNV-1a 64 of every byte before it).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

fn fix_checksum(bytes: &mut [u8]) {
    if bytes.len() >= 8 {
        let n = bytes.len() - 8;
        let sum = fnv1a(&bytes[..n]);
        bytes[n..].copy_from_slice(&sum.to_le_bytes());
    }
}

/// A small tiny run trained once for the whole binary: its folder holds `last.ckpt`,
/// `best.ckpt`, `detector.stad` and `run.json`.
struct TrainedRun {
    _dir: tempfile::TempDir,
    path: PathBuf,
    model: ModelConfig,
    train: TrainConfig,
    samples: Vec<Sample>,
}

fn tiny_model() -> ModelConfig {
    // A random teacher (stored in the detector) tapped early: small files, fast loads.
    let teacher = BackboneConfig::MobileNetV2(MobileNetV2Config::new().with_taps(vec![1, 2, 3]));
    let method = MethodConfig::ensemble(2);
    ModelConfig::new(teacher, TeacherWeights::Random(7), method).with_image_size(32)
}

fn trained_run() -> &'static TrainedRun {
    static RUN: OnceLock<TrainedRun> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run");
        let data = Dataset::synthetic(&stad::data::SyntheticConfig::tiny(
            3,
            stad::data::SyntheticKind::Object,
        ));
        let model = tiny_model();
        let train_cfg = TrainConfig::new()
            .with_epochs(1)
            .with_batch_size(4)
            .with_seed(42)
            .with_holdout_fraction(0.25);
        let device = Default::default();
        let run = RunDir::open(&path, false).expect("open run folder");
        let outcome = train::<CpuAutodiff>(
            &model,
            &train_cfg,
            data.train.clone(),
            Some(&run),
            &device,
            &mut Silent,
        )
        .expect("tiny training");
        drop(run);
        let history = outcome.history.clone();
        let best_epoch = outcome.best_epoch;
        let (n_holdout, n_fit) = (
            outcome.holdout.len(),
            data.train.len() - outcome.holdout.len(),
        );
        let detector =
            Detector::<Cpu>::calibrate_nominal(outcome.model, outcome.holdout, 0.99, &device)
                .expect("calibrate");
        detector
            .save(&path.join(stad_cli::run_dir::DETECTOR_FILE))
            .expect("save detector");
        let info = stad_cli::run_dir::RunInfo {
            stad_version: "0.1.0".into(),
            method: "ensemble".into(),
            category: "synthetic-object".into(),
            data: stad_cli::data::DataSpec {
                dir: dir.path().join("data"),
                format: stad_cli::args::FormatArg::Synthetic,
                abnormal: None,
                masks: None,
                synthetic_kind: Some(stad_cli::args::SyntheticKindArg::Object),
            },
            teacher: "mobilenet_v2 (random)".into(),
            model: model.clone(),
            train: train_cfg.clone(),
            device: "cpu".into(),
            n_fit,
            n_holdout,
            best_epoch,
            history,
            train_seconds: 1.5,
            threshold: detector.threshold,
            threshold_source: detector.threshold_source,
        };
        let paths = stad_cli::run_dir::RunPaths::new(&path);
        paths.save(&info).expect("save run.json");
        paths.load().expect("run.json reads back");
        TrainedRun {
            _dir: dir,
            path,
            model,
            train: train_cfg,
            samples: data.train,
        }
    })
}

/// An evaluation record as `stad eval --json` writes it.
fn eval_record_json() -> Vec<u8> {
    use stad_viz::{EvalRecord, ImageScore};
    let scores: Vec<ImageScore> = [
        ("good/000.png", "good", false, 0.10),
        ("good/001.png", "good", false, 0.20),
        ("crack/000.png", "crack", true, 0.35),
        ("scratch/000.png", "scratch", true, 0.90),
    ]
    .iter()
    .map(|&(name, defect, anomalous, score)| ImageScore {
        name: name.into(),
        defect: defect.into(),
        anomalous,
        score,
    })
    .collect();
    let per_defect = vec![
        stad::metrics::DefectAuroc {
            defect_type: "crack".into(),
            auroc: 1.0,
            n_anomalous: 1,
            n_good: 2,
        },
        stad::metrics::DefectAuroc {
            defect_type: "scratch".into(),
            auroc: 1.0,
            n_anomalous: 1,
            n_good: 2,
        },
    ];
    let record = EvalRecord {
        method: "stfpm".into(),
        category: "bottle".into(),
        teacher: "mobilenet_v2 (embedded ImageNet)".into(),
        evaluation: stad::Evaluation {
            n_test: scores.len(),
            image_auroc: 1.0,
            pixel_auroc: 0.9,
            au_pro: 0.8,
            image_f1: stad::metrics::F1Threshold {
                threshold: 0.33,
                precision: 0.8,
                recall: 0.9,
                f1: 0.85,
            },
            dice: 0.5,
            dice_mean_anomalous: 0.45,
            iou: 0.35,
            per_defect,
            images_per_second: 120.0,
        },
        detector_threshold: 0.45,
        detector_threshold_source: "99% quantile of 20 held-out good images".into(),
        scores,
    };
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("eval.json");
    stad_viz::write_record(&record, &p).unwrap();
    stad_viz::read_records(std::slice::from_ref(&p)).expect("seed record reads back");
    read(&p)
}

/// A `.safetensors` file holding the tensors of `src` whose key starts with one of `keep`.
fn safetensors_subset(src: &Path, keep: &[&str]) -> Vec<u8> {
    let bytes = read(src);
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, Value> =
        serde_json::from_slice(&bytes[8..8 + n]).expect("safetensors header");
    let data = &bytes[8 + n..];
    let mut out_header = serde_json::Map::new();
    let mut out_data = Vec::new();
    for (k, v) in &header {
        if !keep.iter().any(|p| k.starts_with(p)) {
            continue;
        }
        let offs = v["data_offsets"].as_array().expect("offsets");
        let (a, b) = (
            offs[0].as_u64().unwrap() as usize,
            offs[1].as_u64().unwrap() as usize,
        );
        let start = out_data.len();
        out_data.extend_from_slice(&data[a..b]);
        let mut entry = v.clone();
        entry["data_offsets"] = Value::from(vec![start, out_data.len()]);
        out_header.insert(k.clone(), entry);
    }
    let mut h = serde_json::to_vec(&Value::Object(out_header)).unwrap();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(&out_data);
    out
}

fn head_tail(len: usize, n: usize) -> Vec<Range<usize>> {
    vec![0..n.min(len), len.saturating_sub(n)..len]
}

// ---------------------------------------------------------------------------------------------
// Loaders

/// PNG / JPEG / TIFF / BMP: `decode_bytes`, then the resize and normalisation of
/// `prepare_sample` for what decodes.
#[test]
fn fuzz_images() {
    let _g = serial();
    let seeds = image_seeds();
    let cfg = PreprocessConfig::square(32);
    let mut stats = Stats::new("images");
    let mut decoder_panics = Vec::new();
    for case in stats.cases(10_000) {
        let mut rng = case_rng("images", case);
        // The full-size seeds are slow to decode: one case in 40.
        let s = if below(&mut rng, 40) == 0 {
            below(&mut rng, 2)
        } else {
            2 + below(&mut rng, seeds.len() - 2)
        };
        let (name, extension, seed) = &seeds[s];
        let mut bytes = seed.clone();
        let len = bytes.len();
        let what = mutate_bytes(&mut rng, &mut bytes, &head_tail(len, 256));
        // Mostly the right extension; sometimes another (the content decides) or none.
        let path = match below(&mut rng, 8) {
            0 => PathBuf::from("fuzz/img.png"),
            1 => PathBuf::from("fuzz/img"),
            _ => PathBuf::from(format!("fuzz/img.{extension}")),
        };
        stats.run(case, &format!("{name}: {what}"), || {
            match decode_bytes(&bytes, &path) {
                Ok(img) => {
                    let chw = image_to_chw(&img, &cfg);
                    assert_eq!(chw.len(), cfg.image_len());
                    Outcome::Ok
                }
                Err(e) => {
                    if let stad_data::DataError::DecoderPanic { message, .. } = &e {
                        decoder_panics.push(format!("images:{case} [{name}: {what}]: {message}"));
                    }
                    Outcome::Err(kind_of(&e))
                }
            }
        });
    }
    if !decoder_panics.is_empty() {
        eprintln!(
            "images: {} decoder panics caught by decode_bytes (typed DecoderPanic):\n{}",
            decoder_panics.len(),
            decoder_panics[..decoder_panics.len().min(10)].join("\n")
        );
    }
    stats.finish();
}

/// Masks: a bottle ground-truth mask (and it re-encoded small) through the header-only size
/// check of a data set (`Dataset::mvtec`) and `prepare_sample` with a `MaskSource::File`.
#[test]
fn fuzz_masks() {
    let _g = serial();
    let gt = read(&bottle().join("ground_truth/broken_large/000_mask.png"));
    let mask = image::load_from_memory(&gt).expect("mask decodes");
    let small = mask.resize_exact(48, 48, image::imageops::FilterType::Nearest);
    let luma = DynamicImage::ImageLuma8(small.to_luma8());
    let rgb = DynamicImage::ImageRgb8(small.to_rgb8());
    let seeds: Vec<(String, &str, Vec<u8>)> = vec![
        ("bottle 000_mask.png (900²)".into(), "png", gt),
        (
            "48² luma8.png".into(),
            "png",
            encode(&luma, ImageFormat::Png),
        ),
        ("48² rgb8.png".into(), "png", encode(&rgb, ImageFormat::Png)),
        (
            "48² luma8.bmp".into(),
            "bmp",
            encode(&luma, ImageFormat::Bmp),
        ),
        (
            "48² luma8.tif".into(),
            "tif",
            encode(&luma, ImageFormat::Tiff),
        ),
        (
            "48² rgb8.jpg".into(),
            "jpg",
            encode(&rgb, ImageFormat::Jpeg),
        ),
    ];
    // An MVTec layout with one good training image and one defective test image whose
    // mask is rewritten by every case.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cat");
    let img48 = DynamicImage::ImageRgb8(
        image::load_from_memory(&read(&bottle().join("test/broken_large/000.png")))
            .unwrap()
            .resize_exact(48, 48, image::imageops::FilterType::Triangle)
            .to_rgb8(),
    );
    let img900 = bottle().join("test/broken_large/000.png");
    for d in [
        "train/good",
        "test/good",
        "test/crack",
        "ground_truth/crack",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    img48.save(root.join("train/good/000.png")).unwrap();
    img48.save(root.join("test/good/000.png")).unwrap();
    let img48_path = root.join("test/crack/000.png");
    img48.save(&img48_path).unwrap();
    let cfg = PreprocessConfig::square(32);
    let mut stats = Stats::new("masks");
    for case in stats.cases(3000) {
        let mut rng = case_rng("masks", case);
        let s = if below(&mut rng, 30) == 0 {
            0
        } else {
            1 + below(&mut rng, seeds.len() - 1)
        };
        let (name, extension, seed) = &seeds[s];
        let mut bytes = seed.clone();
        let len = bytes.len();
        let what = mutate_bytes(&mut rng, &mut bytes, &head_tail(len, 256));
        for e in ["png", "bmp", "tif", "jpg"] {
            let _ = std::fs::remove_file(root.join(format!("ground_truth/crack/000_mask.{e}")));
        }
        let mask_path = root.join(format!("ground_truth/crack/000_mask.{extension}"));
        std::fs::write(&mask_path, &bytes).unwrap();
        let image = if s == 0 {
            img900.clone()
        } else {
            img48_path.clone()
        };
        stats.run(case, &format!("{name}: {what}"), || {
            let opened = Dataset::mvtec(&root, &Default::default()).map(drop);
            let sample = Sample {
                image: ImageSource::File(image),
                label: Label::Anomalous,
                defect: "crack".into(),
                mask: MaskSource::File(mask_path.clone()),
            };
            let prepared = stad::data::prepare_sample(&sample, &cfg);
            if let Ok(p) = &prepared {
                assert_eq!(p.mask.len(), 32 * 32);
                assert!(p.mask.iter().all(|&v| v <= 1));
            }
            // Also the mask decoded alone, whatever its size.
            if let Ok(m) = stad_data::preprocess::decode_bytes(&bytes, &mask_path) {
                assert_eq!(mask_to_binary(&m, 32, 32).len(), 32 * 32);
            }
            match (opened, prepared) {
                (Ok(()), Ok(_)) => Outcome::Ok,
                (Err(e), _) => Outcome::Err(format!("open:{}", kind_of(&e))),
                (_, Err(e)) => Outcome::Err(format!("prepare:{}", kind_of(&e))),
            }
        });
    }
    stats.finish();
}

fn resnet(taps: Vec<ResNetStage>) -> Backbone<Cpu> {
    BackboneConfig::ResNet(ResNetConfig::new(ResNetArch::ResNet18).with_taps(taps))
        .init(&Default::default())
        .unwrap()
}

/// One weights case: write `bytes` as `file_name`, read it as a state dict, load it.
fn load_weights(dir: &Path, file_name: &str, bytes: &[u8], net: &mut Backbone<Cpu>) -> Outcome {
    let path = dir.join(file_name);
    std::fs::write(&path, bytes).unwrap();
    match StateDict::from_file(&path) {
        Ok(dict) => outcome(net.load_torchvision(&dict)),
        Err(e) => Outcome::Err(format!("read:{}", kind_of(&e))),
    }
}

/// Weights: small `.safetensors` subsets of the shared MobileNetV2 and ResNet18 (many cases,
/// mutations anywhere), and the full fixtures `.pth` (11 MB) and `.safetensors` (47 MB), whose
/// mutations go mostly to the first and last 64 KiB (headers, pickle, zip directory).
#[test]
fn fuzz_weights() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let device = Default::default();
    let mnv2_bytes = safetensors_subset(
        &stad_testutil::shared_dir().join("weights/mobilenet_v2_imagenet_tflite.safetensors"),
        &["features.0.", "features.1.", "features.2.", "features.3."],
    );
    let mut mnv2 = BackboneConfig::MobileNetV2(
        MobileNetV2Config::new()
            .with_tf_padding(true)
            .with_taps(vec![3]),
    )
    .init::<Cpu>(&device)
    .unwrap();
    let r18_l1_bytes = safetensors_subset(
        &stad_testutil::fixture("resnet18_teacher.safetensors"),
        &["conv1.", "bn1.", "layer1."],
    );
    let mut r18_l1 = resnet(vec![ResNetStage::Layer1]);
    let mut r18_l3 = resnet(vec![
        ResNetStage::Layer1,
        ResNetStage::Layer2,
        ResNetStage::Layer3,
    ]);
    let pth = read(&stad_testutil::fixture("resnet18_student_to_layer3.pth"));
    let st = read(&stad_testutil::fixture("resnet18_teacher.safetensors"));
    // The seeds load as they are.
    let seed_loads = [
        load_weights(dir.path(), "w.safetensors", &mnv2_bytes, &mut mnv2),
        load_weights(dir.path(), "w.safetensors", &r18_l1_bytes, &mut r18_l1),
        load_weights(dir.path(), "w.pth", &pth, &mut r18_l3),
        load_weights(dir.path(), "w.safetensors", &st, &mut r18_l3),
    ];
    for (i, o) in seed_loads.iter().enumerate() {
        if let Outcome::Err(e) = o {
            panic!("weight seed {i} does not load: {e}");
        }
    }

    let mut stats = Stats::new("weights");
    for case in stats.cases(1500) {
        let mut rng = case_rng("weights", case);
        let pick = below(&mut rng, 100);
        let (seed_name, seed, file, net, focus): (&str, &Vec<u8>, &str, &mut Backbone<Cpu>, _) =
            if pick < 2 {
                let l = st.len();
                (
                    "resnet18_teacher.safetensors (47 MB)",
                    &st,
                    "w.safetensors",
                    &mut r18_l3,
                    head_tail(l, 64 << 10),
                )
            } else if pick < 6 {
                let l = pth.len();
                (
                    "resnet18_student_to_layer3.pth (11 MB)",
                    &pth,
                    "w.pth",
                    &mut r18_l3,
                    head_tail(l, 64 << 10),
                )
            } else if pick < 53 {
                let l = mnv2_bytes.len();
                // The header (its length, JSON), then anywhere.
                (
                    "mobilenet_v2 features 0-3 .safetensors",
                    &mnv2_bytes,
                    "w.safetensors",
                    &mut mnv2,
                    vec![0..4096.min(l), 0..l],
                )
            } else {
                let l = r18_l1_bytes.len();
                (
                    "resnet18 to layer1 .safetensors",
                    &r18_l1_bytes,
                    "w.safetensors",
                    &mut r18_l1,
                    vec![0..4096.min(l), 0..l],
                )
            };
        let mut bytes = seed.clone();
        let what = if seed_name.contains(".safetensors") && below(&mut rng, 4) == 0 {
            // Structural: edit the JSON header and rewrite its length.
            let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
            let header: Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
            let (h, what) = mutate_json(&mut rng, &header);
            let mut out = (h.len() as u64).to_le_bytes().to_vec();
            out.extend_from_slice(&h);
            out.extend_from_slice(&bytes[8 + n..]);
            bytes = out;
            format!("header: {what}")
        } else {
            mutate_bytes(&mut rng, &mut bytes, &focus)
        };
        stats.run(case, &format!("{seed_name}: {what}"), || {
            load_weights(dir.path(), file, &bytes, net)
        });
    }
    stats.finish();
}

/// Mutates a `STADCKPT` file: raw bytes (the checksum catches it), raw bytes behind a
/// recomputed checksum, or structurally (header JSON edited, a blob mutated, dropped,
/// duplicated or renamed) and re-encoded with valid lengths and checksum.
fn mutate_container(rng: &mut SplitMix64, seed: &[u8]) -> (Vec<u8>, String) {
    let len = seed.len();
    let mut bytes = seed.to_vec();
    match below(rng, 10) {
        0 | 1 => {
            let what = mutate_bytes(rng, &mut bytes, &head_tail(len, 4096));
            (bytes, format!("raw: {what}"))
        }
        2..=4 => {
            let what = mutate_bytes(rng, &mut bytes, &head_tail(len, 4096));
            fix_checksum(&mut bytes);
            (bytes, format!("checksum fixed: {what}"))
        }
        _ => {
            let mut file =
                CheckpointFile::from_bytes(seed, Path::new("seed")).expect("seed parses");
            let mut what = Vec::new();
            if file.blobs.is_empty() || below(rng, 2) == 0 {
                let header: Value = serde_json::from_str(&file.header).unwrap();
                let (h, w) = mutate_json(rng, &header);
                file.header = String::from_utf8_lossy(&h).into_owned();
                what.push(format!("header: {w}"));
            } else {
                let i = below(rng, file.blobs.len());
                match below(rng, 8) {
                    0 => {
                        let (name, _) = file.blobs.remove(i);
                        what.push(format!("drop blob {name}"));
                    }
                    1 => {
                        let b = file.blobs[i].clone();
                        what.push(format!("duplicate blob {}", b.0));
                        file.blobs.push(b);
                    }
                    2 => {
                        what.push(format!("rename blob {} -> student9", file.blobs[i].0));
                        file.blobs[i].0 = "student9".into();
                    }
                    3 => {
                        let j = below(rng, file.blobs.len());
                        let other = file.blobs[j].1.clone();
                        what.push(format!(
                            "blob {} gets the data of {}",
                            file.blobs[i].0, file.blobs[j].0
                        ));
                        file.blobs[i].1 = other;
                    }
                    _ => {
                        let blob = &mut file.blobs[i].1;
                        let l = blob.len();
                        let w = mutate_bytes(rng, blob, &head_tail(l, 512));
                        what.push(format!("blob {}: {w}", file.blobs[i].0));
                    }
                }
            }
            (file.to_bytes(), what.join("; "))
        }
    }
}

/// `detector.stad`: `Detector::<Cpu>::load`.
#[test]
fn fuzz_detector() {
    let _g = serial();
    let run = trained_run();
    let seed = read(&run.path.join("detector.stad"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("detector.stad");
    let device = Default::default();
    let mut stats = Stats::new("detector");
    for case in stats.cases(2000) {
        let mut rng = case_rng("detector", case);
        let (bytes, what) = mutate_container(&mut rng, &seed);
        std::fs::write(&path, &bytes).unwrap();
        stats.run(case, &what, || {
            outcome(Detector::<Cpu>::load(&path, &device))
        });
    }
    stats.finish();
}

/// Training checkpoints: `CheckpointFile::read`, then the students and optimizer records as
/// a resume decodes them; and a part of the cases through `stad::train`'s resume path itself.
#[test]
fn fuzz_checkpoints() {
    let _g = serial();
    let run = trained_run();
    let last = read(&run.path.join("last.ckpt"));
    let best = read(&run.path.join("best.ckpt"));
    let device = Default::default();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("last.ckpt");
    let mut stats = Stats::new("checkpoints");
    let resume_dir = dir.path().join("resume");
    for case in stats.cases(1000) {
        let mut rng = case_rng("checkpoints", case);
        let use_best = below(&mut rng, 4) == 0;
        let resume = below(&mut rng, 8) == 0;
        let seed = if use_best { &best } else { &last };
        let (bytes, what) = mutate_container(&mut rng, seed);
        let label = format!(
            "{}{}: {what}",
            if use_best { "best.ckpt" } else { "last.ckpt" },
            if resume { " (resume)" } else { "" }
        );
        if resume {
            let _ = std::fs::remove_dir_all(&resume_dir);
            std::fs::create_dir_all(&resume_dir).unwrap();
            let (l, b) = if use_best {
                (&last, &bytes)
            } else {
                (&bytes, &best)
            };
            std::fs::write(resume_dir.join("last.ckpt"), l).unwrap();
            std::fs::write(resume_dir.join("best.ckpt"), b).unwrap();
            stats.run(case, &label, || {
                let r = RunDir::open(&resume_dir, true).and_then(|rd| {
                    train::<CpuAutodiff>(
                        &run.model,
                        &run.train,
                        run.samples.clone(),
                        Some(&rd),
                        &device,
                        &mut Silent,
                    )
                });
                outcome(r)
            });
        } else {
            std::fs::write(&path, &bytes).unwrap();
            stats.run(case, &label, || {
                let file = match CheckpointFile::read(&path) {
                    Ok(f) => f,
                    Err(e) => return Outcome::Err(kind_of(&e)),
                };
                let students = run.model.init_students::<CpuAutodiff>(42, &device).unwrap();
                let r = file
                    .load_module("students", students, &device, &path)
                    .and_then(|s| {
                        if use_best {
                            return Ok(s);
                        }
                        use burn::optim::{Optimizer as _, SgdConfig};
                        let records =
                            file.record::<CpuAutodiff, Vec<_>>("optimizers", &device, &path)?;
                        for rec in records {
                            let optim =
                                SgdConfig::new().init::<CpuAutodiff, Backbone<CpuAutodiff>>();
                            let _ = optim.load_record(rec);
                        }
                        Ok(s)
                    });
                outcome(r)
            });
        }
    }
    stats.finish();
}

/// `run.json`: `RunPaths::load` (serde into `RunInfo`).
#[test]
fn fuzz_run_json() {
    let _g = serial();
    let run = trained_run();
    let seed_bytes = read(&run.path.join("run.json"));
    let seed: Value = serde_json::from_slice(&seed_bytes).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("detector.stad"), b"").unwrap();
    let paths = stad_cli::run_dir::RunPaths::new(dir.path());
    let mut stats = Stats::new("run.json");
    for case in stats.cases(2000) {
        let mut rng = case_rng("run.json", case);
        let (bytes, what) = if below(&mut rng, 3) == 0 {
            let mut b = seed_bytes.clone();
            let l = b.len();
            let w = mutate_bytes(&mut rng, &mut b, std::slice::from_ref(&(0..l)));
            (b, w)
        } else {
            mutate_json(&mut rng, &seed)
        };
        std::fs::write(paths.info(), &bytes).unwrap();
        stats.run(case, &what, || outcome(paths.load()));
    }
    stats.finish();
}

/// The evaluation JSON: `stad_viz::read_records`.
#[test]
fn fuzz_eval_json() {
    let _g = serial();
    let seed_bytes = eval_record_json();
    let seed: Value = serde_json::from_slice(&seed_bytes).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eval.json");
    let mut stats = Stats::new("eval.json");
    for case in stats.cases(2000) {
        let mut rng = case_rng("eval.json", case);
        let (bytes, what) = if below(&mut rng, 3) == 0 {
            let mut b = seed_bytes.clone();
            let l = b.len();
            let w = mutate_bytes(&mut rng, &mut b, std::slice::from_ref(&(0..l)));
            (b, w)
        } else {
            mutate_json(&mut rng, &seed)
        };
        std::fs::write(&path, &bytes).unwrap();
        stats.run(case, &what, || {
            outcome(stad_viz::read_records(std::slice::from_ref(&path)))
        });
    }
    stats.finish();
}
