//! A lead's dedup window of event ids.

use smallvec::SmallVec;

use crate::ffi::prefetch;
use crate::hashing::fx_hash;

/// A lead's dedup window: event ids, oldest first. Their text sits end to end in one
/// buffer (no allocation per id, so no cache miss per id); their hashes are
/// scanned, not probed: most leads' windows hold a few ids. A full one holds
/// ``DEDUP_WINDOW`` (500), scanned per event, and each new id then shifts both lists
/// by one; a window fills only after 500 distinct events of one lead.
#[derive(Default)]
pub(crate) struct SeenIds {
    hashes: SmallVec<[u64; 16]>,
    // Where each id ends in ``text``; the oldest starts at ``start`` (what is before it
    // was forgotten, and is dropped once it is half the buffer).
    ends: SmallVec<[u32; 16]>,
    text: String,
    start: u32,
}

impl SeenIds {
    pub(crate) fn len(&self) -> usize {
        self.hashes.len()
    }

    pub(crate) fn id(&self, i: usize) -> &str {
        let start = if i == 0 { self.start } else { self.ends[i - 1] };
        &self.text[start as usize..self.ends[i] as usize]
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).map(|i| self.id(i))
    }

    pub(crate) fn contains(&self, id: &str) -> bool {
        let hash = fx_hash(id);
        self.hashes
            .iter()
            .enumerate()
            .any(|(i, h)| *h == hash && self.id(i) == id)
    }

    pub(crate) fn push(&mut self, id: &str) {
        self.hashes.push(fx_hash(id));
        self.text.push_str(id);
        self.ends
            .push(u32::try_from(self.text.len()).expect("a window's ids fit 4 GiB"));
    }

    /// Prefetch hint: the ends of the window's buffers, where :meth:`push` writes.
    pub(crate) fn prefetch_tail(&self) {
        prefetch(self.text.as_ptr().wrapping_add(self.text.len()), 1);
        if self.hashes.spilled() {
            prefetch(
                self.hashes.as_ptr().wrapping_add(self.hashes.len()).cast(),
                1,
            );
            prefetch(self.ends.as_ptr().wrapping_add(self.ends.len()).cast(), 1);
        }
    }

    pub(crate) fn forget_oldest(&mut self) {
        self.hashes.remove(0);
        self.start = self.ends.remove(0);
        if self.start as usize * 2 > self.text.len() {
            let cut = self.start;
            self.text.drain(..cut as usize);
            self.ends.iter_mut().for_each(|end| *end -= cut);
            self.start = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_kept_in_order_and_found() {
        let mut seen = SeenIds::default();
        for id in ["a", "bb", "ccc"] {
            seen.push(id);
        }
        assert_eq!(seen.iter().collect::<Vec<_>>(), ["a", "bb", "ccc"]);
        assert!(seen.contains("bb") && !seen.contains("b") && !seen.contains(""));
    }

    #[test]
    fn forgetting_the_oldest_keeps_the_rest_readable() {
        let mut seen = SeenIds::default();
        for i in 0..100 {
            seen.push(&format!("event-{i}"));
            if seen.len() > 10 {
                seen.forget_oldest();
            }
        }
        let want: Vec<String> = (90..100).map(|i| format!("event-{i}")).collect();
        assert_eq!(seen.iter().collect::<Vec<_>>(), want);
        assert!(!seen.contains("event-89") && seen.contains("event-90"));
        // The forgotten text is dropped once it is half the buffer.
        assert!(seen.text.len() <= 2 * want.iter().map(String::len).sum::<usize>());
    }
}
