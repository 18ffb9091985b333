//! Inputs for the short fuzzing runs in the test suite.
//!
//! The real fuzzing is coverage-guided, with libFuzzer (`fuzz/`, `cargo +nightly fuzz run …`).
//! The suite cannot count on a nightly toolchain, so each fuzz target also runs as an ordinary
//! test over its seed files and a few thousand mutations of them made here: bit flips, bytes
//! set, inserted and removed, ranges repeated, seeds spliced together and the target's own
//! tokens dropped in. Deterministic (a fixed seed), so a failure repeats.

/// A small, fast, deterministic generator (xorshift64*); statistical quality is beside the point.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next_u64() % n as u64) as usize }
    }
}

/// `count` mutations of `seeds`, with `tokens` (the target's syntax: quotes, delimiters,
/// keywords) among the things inserted.
pub fn mutations(seeds: &[Vec<u8>], tokens: &[&[u8]], count: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let mut input = seeds.get(rng.below(seeds.len())).cloned().unwrap_or_default();
        for _ in 0..=rng.below(4) {
            mutate(&mut input, seeds, tokens, &mut rng);
        }
        out.push(input);
    }
    out
}

fn mutate(input: &mut Vec<u8>, seeds: &[Vec<u8>], tokens: &[&[u8]], rng: &mut Rng) {
    let len = input.len();
    match rng.below(8) {
        0 if len > 0 => {
            let i = rng.below(len);
            input[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            input[i] = [0, 0xFF, b'"', b'\n', b',', b'\'', 0x7F, 0xC3][rng.below(8)];
        }
        2 => {
            let at = rng.below(len + 1);
            let byte = rng.next_u64() as u8;
            input.insert(at, byte);
        }
        3 if len > 0 => {
            let from = rng.below(len);
            let to = (from + 1 + rng.below(16)).min(len);
            input.drain(from..to);
        }
        4 if len > 0 => {
            // Repeat a range: long runs are where size and depth bounds are met.
            let from = rng.below(len);
            let to = (from + 1 + rng.below(32)).min(len);
            let piece = input[from..to].to_vec();
            let times = 1 + rng.below(64);
            let at = rng.below(input.len() + 1);
            let repeated: Vec<u8> = piece.iter().copied().cycle().take(piece.len() * times).collect();
            input.splice(at..at, repeated);
        }
        5 if !seeds.is_empty() => {
            let other = &seeds[rng.below(seeds.len())];
            let cut = rng.below(len + 1);
            let from = rng.below(other.len() + 1);
            input.truncate(cut);
            input.extend_from_slice(&other[from..]);
        }
        6 if !tokens.is_empty() => {
            let token = tokens[rng.below(tokens.len())];
            let at = rng.below(len + 1);
            input.splice(at..at, token.iter().copied());
        }
        _ => {
            if len > 1 {
                input.truncate(rng.below(len));
            }
        }
    }
}

/// The seed files of a fuzz target (`fuzz/seeds/<target>/`), from a crate's manifest folder:
/// the one `cargo test` names when it runs the test, else the one the test was built in (a
/// build cache shared between checkouts may hold a test built in another folder).
pub fn seeds(manifest_dir: &str, target: &str) -> Vec<Vec<u8>> {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| manifest_dir.to_string());
    let dir = std::path::Path::new(&manifest_dir).join("../../fuzz/seeds").join(target);
    let mut files: Vec<std::path::PathBuf> =
        std::fs::read_dir(&dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    files.sort();
    files.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

thread_local! {
    /// Set while this thread runs a short run: panics are noted even when the code under test
    /// catches them (kho catches a spreadsheet reader's panics, which libFuzzer still reports).
    static WATCHING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static PANICKED: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

fn watch_panics() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if WATCHING.with(|w| w.get()) {
                PANICKED.with(|p| *p.borrow_mut() = Some(info.to_string()));
            }
            previous(info);
        }));
    });
}

/// Run a fuzz target's entry point over its seeds and 1,500 mutations of them: the short run
/// each crate's tests make of its targets. Any panic fails it, caught or not, as in libFuzzer.
pub fn short_run(manifest_dir: &str, target: &str, tokens: &[&[u8]], run: fn(&[u8])) {
    let seeds = seeds(manifest_dir, target);
    assert!(!seeds.is_empty(), "no seeds in fuzz/seeds/{target}");
    watch_panics();
    WATCHING.with(|w| w.set(true));
    let inputs = seeds.iter().cloned().chain(mutations(&seeds, tokens, 1500, 0x6b68_6f00 ^ target.len() as u64));
    for input in inputs {
        run(&input);
        if let Some(message) = PANICKED.with(|p| p.borrow_mut().take()) {
            WATCHING.with(|w| w.set(false));
            panic!("{target}: an input made the code panic ({message}): {:?}", String::from_utf8_lossy(&input));
        }
    }
    WATCHING.with(|w| w.set(false));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_are_deterministic_and_varied() {
        let seeds = vec![b"a,b\n1,2\n".to_vec()];
        let a = mutations(&seeds, &[b"\""], 200, 7);
        assert_eq!(a, mutations(&seeds, &[b"\""], 200, 7));
        let distinct: std::collections::HashSet<&Vec<u8>> = a.iter().collect();
        assert!(distinct.len() > 100, "{}", distinct.len());
    }
}
