//! FxHash (rustc's hasher) for the core's small maps and the lead index: a few
//! multiply-rotates per word. The keys (event ids, signal labels, group names, lead ids)
//! come from a lead's own history, not from an adversary choosing collisions.

use std::hash::{BuildHasherDefault, Hasher};

use indexmap::IndexMap;

/// rustc's FxHash.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(chunk.try_into().unwrap()));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

pub(crate) type Fx = BuildHasherDefault<FxHasher>;
pub(crate) type FxIndexMap<K, V> = IndexMap<K, V, Fx>;

/// The FxHash of a string.
pub(crate) fn fx_hash(text: &str) -> u64 {
    let mut hasher = FxHasher::default();
    hasher.write(text.as_bytes());
    hasher.finish()
}

/// A lead id's hash in the lead index: never 0 (an empty slot's mark).
pub(crate) fn lead_hash(id: &[u8]) -> u64 {
    let mut hasher = FxHasher::default();
    hasher.write(id);
    hasher.finish() | 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_text_hashes_equal_and_lead_hashes_are_odd() {
        assert_eq!(fx_hash("lead-1"), fx_hash("lead-1"));
        assert_ne!(fx_hash("lead-1"), fx_hash("lead-2"));
        for id in [
            "",
            "a",
            "lead-1",
            "a-much-longer-lead-identifier-than-eight",
        ] {
            assert_eq!(lead_hash(id.as_bytes()) & 1, 1, "{id}");
        }
    }

    #[test]
    fn a_tail_shorter_than_a_word_still_counts() {
        // Eight bytes plus one: the ninth byte goes through the padded last word.
        assert_ne!(fx_hash("abcdefgh1"), fx_hash("abcdefgh2"));
        assert_ne!(fx_hash("abcdefgh"), fx_hash("abcdefgh\0"));
    }
}
