//! A cheap hasher for the per-socket tables (keyed by socket cookie, inode, process key).
//!
//! Those maps are looked up once or more per socket per cycle; with SipHash the hashing
//! alone showed in profiles at 30k sockets. Their keys are numbers the kernel hands out
//! (cookies and inodes from counters, pids), not chosen by whoever creates sockets, so a
//! hash-flooding resistant hasher buys nothing there.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// Multiply-rotate hashing of integer words (the "FxHash" scheme).
#[derive(Debug, Default, Clone, Copy)]
pub struct FastHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(c);
            self.add(u64::from_ne_bytes(word));
        }
        for b in chunks.remainder() {
            self.add(u64::from(*b));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u16(&mut self, n: u16) {
        self.add(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        // The product's entropy sits in the high bits; the table indexes with the low ones.
        self.0.rotate_left(26)
    }
}

pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;
pub type FastSet<K> = HashSet<K, BuildHasherDefault<FastHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_keys_spread_and_round_trip() {
        let mut m: FastMap<u64, u64> = FastMap::default();
        for k in 0..50_000u64 {
            m.insert(k * 3 + 1, k);
        }
        assert_eq!(m.len(), 50_000);
        assert!((0..50_000u64).all(|k| m.get(&(k * 3 + 1)) == Some(&k)));
        assert_eq!(m.get(&2), None);
        // Low bits (bucket index) differ for neighbouring keys.
        let h = |k: u64| {
            let mut s = FastHasher::default();
            s.write_u64(k);
            s.finish() & 0xff
        };
        let distinct: FastSet<u64> = (0..256u64).map(h).collect();
        assert!(distinct.len() > 128, "{}", distinct.len());
    }
}
