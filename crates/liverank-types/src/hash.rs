//! The id hasher of every crate's hash maps, and the stable hash of strings into ids.
//!
//! [`IdHasher`] is one folded multiply per word (the 128-bit product's halves xor-ed), so
//! the high bits — where callers put an entity kind — reach the low bits a table indexes
//! with. Ids are not attacker-chosen strings, so a keyed hasher (SipHash) buys nothing and
//! cost a fifth of the sample engine's time. Maps hashed with it are for lookups only:
//! nothing whose iteration order reaches an output may iterate one.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// Hasher for integer ids (see the module doc).
#[derive(Default, Clone, Copy, Debug)]
pub struct IdHasher(u64);

const HASH_MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

fn folded_multiply(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = folded_multiply(self.0 ^ n, HASH_MULTIPLIER);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// Builds [`IdHasher`]s.
pub type IdBuildHasher = BuildHasherDefault<IdHasher>;

/// `HashMap` keyed by ids, hashed with [`IdHasher`].
pub type IdMap<K, V> = HashMap<K, V, IdBuildHasher>;

/// `HashSet` of ids, hashed with [`IdHasher`].
pub type IdSet<K> = HashSet<K, IdBuildHasher>;

/// Stable 64-bit FNV-1a hash of a string: the id of a categorical string value (e.g. an
/// author type) that is the same on every platform, Rust version and process.
pub fn str_id(s: &str) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn hasher_spreads_the_high_bits_into_the_low_bits() {
        // Ids differing only in the top byte (the entity kind) land in different buckets
        // of a 1024-slot table.
        let build = IdBuildHasher::default();
        let buckets: IdSet<u64> = (1u64..=255)
            .map(|kind| build.hash_one(kind << 56 | 7) & 1023)
            .collect();
        assert!(buckets.len() > 200, "{} distinct buckets", buckets.len());
    }

    #[test]
    fn hasher_spreads_the_entity_kind_into_the_low_bits() {
        let hash = |n: u64| {
            let mut h = IdHasher::default();
            h.write_u64(n);
            h.finish()
        };
        let buckets: HashSet<u64> = (0..64u64)
            .map(|kind| hash((kind << 56) | 12_345) & 0xFFFF)
            .collect();
        assert!(buckets.len() > 60, "{} distinct low bits", buckets.len());
    }

    #[test]
    fn str_id_is_fnv1a() {
        // FNV-1a 64 reference values.
        assert_eq!(str_id(""), 0xCBF2_9CE4_8422_2325);
        assert_eq!(str_id("a"), 0xAF63_DC4C_8601_EC8C);
    }
}
