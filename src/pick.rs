//! Pick: choosing a provider (DESIGN §3 "Pick", §8; seed 003 principles 4, 11, 13).
//!
//! Thompson sampling over each eligible provider's utility history, with an
//! exploration floor, a guaranteed minimum share for `self`, a watchdog
//! override that prefers `human`, and `--provider` forcing. The random
//! stream derives from a seed recorded in the step entry, and the sampler is
//! written here rather than taken from a crate so that a recorded seed
//! replays the same pick in every future version of ratchet.

use serde::Serialize;

use crate::rails::Selection;

/// The provider that must keep a minimum share of picks.
pub const SELF: &str = "self";
/// The provider the watchdog prefers.
pub const HUMAN: &str = "human";

/// An eligible provider with its utility history.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub name: String,
    /// Sum of the utilities of its scored steps.
    pub utility_sum: f64,
    /// Number of its scored steps.
    pub steps: u64,
}

/// Why a provider was picked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// `--provider` on the command line.
    Forced,
    /// Submitted directly with `ratchet propose` (or through the agents API).
    Submitted,
    /// `self` was below its minimum share of recent picks.
    MinSelfRate,
    /// The watchdog saw no progress: exploration forced, `human` preferred.
    Watchdog,
    /// The exploration floor: uniform among the eligible.
    Explore,
    /// The highest Thompson sample.
    Thompson,
    /// Nothing but the fallback (heartbeat) was eligible.
    Fallback,
}

/// What the selection needs besides the candidates.
#[derive(Clone, Debug)]
pub struct Inputs<'a> {
    /// Eligible providers, in a stable order (by name).
    pub candidates: &'a [Candidate],
    /// Providers of the most recent picks, oldest first.
    pub recent: &'a [String],
    pub selection: &'a Selection,
    /// Set when the watchdog raised an alarm.
    pub watchdog: bool,
    /// Set when `--provider` forces the pick.
    pub forced: Option<&'a str>,
    /// The provider used when none of the others is eligible.
    pub fallback: &'a str,
}

/// The outcome of a pick, recorded in the step entry.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Pick {
    pub provider: String,
    pub reason: Reason,
    /// Hex of the 32-byte seed the pick was drawn with.
    pub seed: String,
    /// The Thompson samples drawn, by provider (empty when none were drawn).
    pub samples: Vec<(String, f64)>,
}

/// The seed for the pick following the log head `head` (hex).
pub fn seed_for(head: &str) -> [u8; 32] {
    *blake3::hash(format!("ratchet-pick-v1:{head}").as_bytes()).as_bytes()
}

/// How many of the last `window` picks must be `self`.
pub fn self_quota(selection: &Selection) -> usize {
    (selection.min_self_rate * selection.window as f64 - 1e-9).ceil().max(0.0) as usize
}

/// Picks a provider. Deterministic in `inputs` and `seed`.
pub fn choose(inputs: &Inputs<'_>, seed: [u8; 32]) -> Pick {
    let seed_hex = const_hex::encode(seed);
    let pick = |provider: &str, reason, samples| Pick {
        provider: provider.to_string(),
        reason,
        seed: seed_hex.clone(),
        samples,
    };
    if let Some(forced) = inputs.forced {
        return pick(forced, Reason::Forced, Vec::new());
    }
    let names: Vec<&str> = inputs.candidates.iter().map(|c| c.name.as_str()).collect();
    let others: Vec<&Candidate> = inputs.candidates.iter().filter(|c| c.name != inputs.fallback).collect();
    if others.is_empty() {
        return pick(inputs.fallback, Reason::Fallback, Vec::new());
    }
    // Self's minimum share: every window of `window` picks, the one being
    // made included, holds at least `self_quota` picks of self.
    if names.contains(&SELF) {
        let window = inputs.selection.window as usize;
        let lookback = window.saturating_sub(1);
        let start = inputs.recent.len().saturating_sub(lookback);
        let recent_self = inputs.recent[start..].iter().filter(|p| *p == SELF).count();
        if recent_self < self_quota(inputs.selection) {
            return pick(SELF, Reason::MinSelfRate, Vec::new());
        }
    }
    let mut rng = Rng::new(seed);
    if inputs.watchdog {
        if names.contains(&HUMAN) {
            return pick(HUMAN, Reason::Watchdog, Vec::new());
        }
        let i = rng.below(others.len());
        return pick(&others[i].name, Reason::Watchdog, Vec::new());
    }
    if rng.unit() < inputs.selection.explore {
        let i = rng.below(others.len());
        return pick(&others[i].name, Reason::Explore, Vec::new());
    }
    let mut samples = Vec::with_capacity(others.len());
    for c in &others {
        // Beta(1 + Σu, 1 + Σ(1-u)): a uniform prior updated with fractional
        // successes, since utility lies in [0, 1].
        let alpha = 1.0 + c.utility_sum.max(0.0);
        let beta = 1.0 + (c.steps as f64 - c.utility_sum).max(0.0);
        samples.push((c.name.clone(), rng.beta(alpha, beta)));
    }
    let best = samples.iter().max_by(|a, b| a.1.total_cmp(&b.1)).map(|(n, _)| n.clone()).unwrap_or_default();
    pick(&best, Reason::Thompson, samples)
}

/// xoshiro256** seeded from 32 bytes: small, fast, and fixed forever.
struct Rng {
    s: [u64; 4],
}

impl Rng {
    fn new(seed: [u8; 32]) -> Rng {
        let mut s = [0u64; 4];
        for (i, chunk) in seed.chunks_exact(8).enumerate() {
            s[i] = u64::from_le_bytes(chunk.try_into().expect("8-byte chunk"));
        }
        if s == [0; 4] {
            s[0] = 0x9e37_79b9_7f4a_7c15;
        }
        Rng { s }
    }

    fn next(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..n (n > 0).
    fn below(&mut self, n: usize) -> usize {
        ((self.unit() * n as f64) as usize).min(n - 1)
    }

    /// Standard normal (Marsaglia's polar method).
    fn normal(&mut self) -> f64 {
        loop {
            let u = 2.0 * self.unit() - 1.0;
            let v = 2.0 * self.unit() - 1.0;
            let s = u * u + v * v;
            if s > 0.0 && s < 1.0 {
                return u * (-2.0 * s.ln() / s).sqrt();
            }
        }
    }

    /// Gamma(shape, 1) by Marsaglia and Tsang (2000).
    fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            let u = self.unit().max(f64::MIN_POSITIVE);
            return self.gamma(shape + 1.0) * u.powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = (1.0 + c * x).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = self.unit();
            if u < 1.0 - 0.0331 * x.powi(4) || u.ln() < 0.5 * x * x + d * (1.0 - v + v.ln()) {
                return d * v;
            }
        }
    }

    fn beta(&mut self, alpha: f64, beta: f64) -> f64 {
        let x = self.gamma(alpha);
        let y = self.gamma(beta);
        if x + y == 0.0 { 0.5 } else { x / (x + y) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selection() -> Selection {
        Selection { strategy: "thompson".into(), explore: 0.1, min_self_rate: 0.2, window: 20 }
    }

    /// Scripted providers of known quality: each pick earns its provider's
    /// mean utility, jittered by the step's own random draw.
    fn simulate(steps: usize, quality: &[(&str, f64)], start_seed: &str) -> Vec<String> {
        let sel = selection();
        let mut sums: Vec<(String, f64, u64)> = quality.iter().map(|(n, _)| (n.to_string(), 0.0, 0)).collect();
        let mut picks: Vec<String> = Vec::new();
        let mut head = start_seed.to_string();
        for _ in 0..steps {
            let candidates: Vec<Candidate> =
                sums.iter().map(|(n, s, k)| Candidate { name: n.clone(), utility_sum: *s, steps: *k }).collect();
            let inputs = Inputs {
                candidates: &candidates,
                recent: &picks,
                selection: &sel,
                watchdog: false,
                forced: None,
                fallback: "heartbeat",
            };
            let seed = seed_for(&head);
            let p = choose(&inputs, seed);
            let q = quality.iter().find(|(n, _)| *n == p.provider).unwrap().1;
            let mut jitter = Rng::new(*blake3::hash(&seed).as_bytes());
            let u = (q + (jitter.unit() - 0.5) * 0.2).clamp(0.0, 1.0);
            let entry = sums.iter_mut().find(|(n, _, _)| *n == p.provider).unwrap();
            entry.1 += u;
            entry.2 += 1;
            picks.push(p.provider.clone());
            head = blake3::hash(format!("{head}{}{u}", p.provider).as_bytes()).to_hex().to_string();
        }
        picks
    }

    const QUALITY: [(&str, f64); 4] = [("self", 0.55), ("ollama", 0.85), ("command", 0.35), ("heartbeat", 0.2)];

    #[test]
    fn over_500_steps_the_best_provider_gets_the_majority() {
        let picks = simulate(500, &QUALITY, "genesis");
        let best = picks.iter().filter(|p| *p == "ollama").count();
        assert!(best > 250, "ollama picked {best} of 500: {:?}", count(&picks));
    }

    #[test]
    fn self_never_falls_below_its_minimum_share() {
        for start in ["a", "b", "c"] {
            let picks = simulate(500, &QUALITY, start);
            let sel = selection();
            let window = sel.window as usize;
            let quota = self_quota(&sel);
            assert_eq!(quota, 4);
            for (i, w) in picks.windows(window).enumerate() {
                let n = w.iter().filter(|p| *p == SELF).count();
                assert!(n >= quota, "window starting at {i} has {n} self picks");
            }
        }
    }

    #[test]
    fn the_same_seed_replays_the_same_picks() {
        assert_eq!(simulate(300, &QUALITY, "x"), simulate(300, &QUALITY, "x"));
        assert_ne!(simulate(300, &QUALITY, "x"), simulate(300, &QUALITY, "y"));
    }

    #[test]
    fn exploration_reaches_every_provider() {
        let picks = simulate(500, &QUALITY, "explore");
        for (name, _) in QUALITY.iter().filter(|(n, _)| *n != "heartbeat") {
            assert!(picks.iter().any(|p| p == name), "{name} never picked: {:?}", count(&picks));
        }
    }

    #[test]
    fn forced_watchdog_and_fallback() {
        let sel = selection();
        let c = |n: &str| Candidate { name: n.into(), utility_sum: 0.0, steps: 0 };
        let recent: Vec<String> = vec!["self".into(); 20];
        let all = [c("human"), c("ollama"), c("self")];
        let base = Inputs {
            candidates: &all,
            recent: &recent,
            selection: &sel,
            watchdog: false,
            forced: None,
            fallback: "heartbeat",
        };
        let forced = choose(&Inputs { forced: Some("ollama"), ..base.clone() }, [1; 32]);
        assert_eq!((forced.provider.as_str(), forced.reason), ("ollama", Reason::Forced));
        let wd = choose(&Inputs { watchdog: true, ..base.clone() }, [1; 32]);
        assert_eq!((wd.provider.as_str(), wd.reason), ("human", Reason::Watchdog));
        let only = [c("heartbeat")];
        let fb = choose(&Inputs { candidates: &only, ..base.clone() }, [1; 32]);
        assert_eq!((fb.provider.as_str(), fb.reason), ("heartbeat", Reason::Fallback));
        // Self below its share is picked first.
        let starved: Vec<String> = vec!["ollama".into(); 20];
        let p = choose(&Inputs { recent: &starved, ..base }, [1; 32]);
        assert_eq!((p.provider.as_str(), p.reason), ("self", Reason::MinSelfRate));
    }

    #[test]
    fn xoshiro_matches_the_reference_implementation() {
        // The first outputs of xoshiro256** from the state {1, 2, 3, 4}, as
        // the reference C code (Blackman and Vigna) prints them.
        let mut r = Rng { s: [1, 2, 3, 4] };
        let got: Vec<u64> = (0..4).map(|_| r.next()).collect();
        assert_eq!(got, [11520, 0, 1509978240, 1215971899390074240]);
    }

    #[test]
    fn a_recorded_seed_replays_bit_for_bit() {
        // Known answers: the seed a log head gives, the generator's first
        // words from it, and Beta samples to the last bit. If any of these
        // change, a pick recorded in a log no longer replays: that is a
        // breaking change of the log's meaning, never a refactoring.
        let seed = seed_for("kat");
        assert_eq!(const_hex::encode(seed), "f6b3b74174f6f03b272cc82a17d55474b2bdb0cf5f5cec090562378ce79b0a92");
        let mut r = Rng::new(seed);
        let words: Vec<u64> = (0..4).map(|_| r.next()).collect();
        assert_eq!(words, [8411186173176802994, 6858652912454055207, 2804705361929690065, 13458699451820112833]);
        let samples: Vec<u64> =
            [(1.0, 1.0), (2.0, 3.0), (0.5, 0.5), (30.0, 70.0)].iter().map(|&(a, b)| r.beta(a, b).to_bits()).collect();
        assert_eq!(samples, [4593113558995495844, 4604450224352400536, 4587450510518627625, 4597485933076911779]);
    }

    /// The pick's known-answer inputs: the fallback and three providers
    /// with some history, self well above its share.
    fn kat_pick(head: &str, explore: f64) -> Pick {
        let sel = Selection { explore, ..selection() };
        let candidates = [
            Candidate { name: "heartbeat".into(), utility_sum: 0.0, steps: 0 },
            Candidate { name: "ollama".into(), utility_sum: 6.5, steps: 9 },
            Candidate { name: "openai".into(), utility_sum: 2.25, steps: 4 },
            Candidate { name: "self".into(), utility_sum: 3.0, steps: 7 },
        ];
        let recent: Vec<String> = vec!["self".into(); 20];
        let inputs = Inputs {
            candidates: &candidates,
            recent: &recent,
            selection: &sel,
            watchdog: false,
            forced: None,
            fallback: "heartbeat",
        };
        choose(&inputs, seed_for(head))
    }

    #[test]
    fn a_recorded_pick_replays_bit_for_bit() {
        // Known answers for the whole pick, from a log head to the provider:
        // the exploration draw, the Thompson samples to the last bit, and
        // the winner. A change here means an old log's picks no longer
        // replay — never a refactoring.
        let p = kat_pick("kat", 0.1);
        assert_eq!((p.provider.as_str(), p.reason), ("ollama", Reason::Thompson));
        assert_eq!(p.seed, "f6b3b74174f6f03b272cc82a17d55474b2bdb0cf5f5cec090562378ce79b0a92");
        let bits: Vec<(&str, u64)> = p.samples.iter().map(|(n, x)| (n.as_str(), x.to_bits())).collect();
        assert_eq!(
            bits,
            [("ollama", 4605611643758542424), ("openai", 4598839528285113332), ("self", 4599240791299278914)]
        );
        // The exploration floor (every draw under it): the uniform choice.
        let p = kat_pick("kat", 1.0);
        assert_eq!((p.provider.as_str(), p.reason, p.samples.len()), ("openai", Reason::Explore, 0));
    }

    #[test]
    fn beta_samples_have_the_right_mean() {
        let mut rng = Rng::new([7; 32]);
        for (a, b) in [(1.0, 1.0), (8.0, 2.0), (0.5, 0.5), (30.0, 70.0)] {
            let n = 20_000;
            let mean: f64 = (0..n).map(|_| rng.beta(a, b)).sum::<f64>() / n as f64;
            assert!((mean - a / (a + b)).abs() < 0.01, "Beta({a},{b}) mean {mean}");
        }
    }

    fn count(picks: &[String]) -> std::collections::BTreeMap<&str, usize> {
        let mut m = std::collections::BTreeMap::new();
        for p in picks {
            *m.entry(p.as_str()).or_default() += 1;
        }
        m
    }
}
