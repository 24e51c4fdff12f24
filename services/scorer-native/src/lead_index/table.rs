//! The lead index's table: lead id -> entry, open addressing (linear probing, at most
//! half full, never shrinks, nothing removed) with one cache line per slot: the id's
//! hash, the id itself when up to 38 bytes (lead ids, most emails), and the entry. The
//! first slot a lookup tries follows from the hash alone, so it can be fetched into
//! cache before it is needed.

use crate::hashing::lead_hash;

/// Lead id -> ``E``.
pub(crate) struct LeadTable<E> {
    slots: Vec<Slot<E>>,
    len: usize,
}

#[repr(align(64))]
pub(crate) struct Slot<E> {
    hash: u64, // 0: empty (a lead's hash is odd)
    key: LeadKey,
    entry: Option<E>,
}

impl<E> Default for Slot<E> {
    fn default() -> Self {
        Slot {
            hash: 0,
            key: LeadKey::default(),
            entry: None,
        }
    }
}

/// A lead id: in place when it fits, so comparing it reads nothing outside the slot.
enum LeadKey {
    Inline { len: u8, bytes: [u8; 38] },
    Heap(Box<[u8]>),
}

impl Default for LeadKey {
    fn default() -> LeadKey {
        LeadKey::Inline {
            len: 0,
            bytes: [0; 38],
        }
    }
}

impl LeadKey {
    fn new(id: &[u8]) -> LeadKey {
        let mut bytes = [0; 38];
        match bytes.get_mut(..id.len()) {
            Some(inline) => {
                inline.copy_from_slice(id);
                LeadKey::Inline {
                    len: id.len() as u8,
                    bytes,
                }
            }
            None => LeadKey::Heap(id.into()),
        }
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            LeadKey::Inline { len, bytes } => &bytes[..*len as usize],
            LeadKey::Heap(bytes) => bytes,
        }
    }
}

impl<E> Default for LeadTable<E> {
    fn default() -> Self {
        LeadTable {
            slots: Vec::new(),
            len: 0,
        }
    }
}

impl<E> LeadTable<E> {
    /// The entry of lead ``id``, inserted by ``make`` when the table has none.
    pub(crate) fn get_or_insert_with<X>(
        &mut self,
        id: &[u8],
        make: impl FnOnce() -> Result<E, X>,
    ) -> Result<&mut E, X> {
        let hash = lead_hash(id);
        let at = match self.probe(hash, |slot| slot.key.as_slice() == id) {
            Some(at) => at,
            None => self.insert(id, hash, make()?),
        };
        Ok(self.slots[at].entry.as_mut().expect("a filled slot"))
    }

    /// The entry of a lead with this hash, if the table has one (for hints only: two ids
    /// with one hash could mix up).
    pub(crate) fn by_hash(&self, hash: u64) -> Option<&E> {
        if hash == 0 {
            return None; // no lead
        }
        let at = self.probe(hash, |_| true)?;
        self.slots[at].entry.as_ref()
    }

    /// The slot a lookup of this hash tries first (None while the table is empty).
    pub(crate) fn first_slot(&self, hash: u64) -> Option<&Slot<E>> {
        (!self.slots.is_empty()).then(|| &self.slots[self.home(hash)])
    }

    fn home(&self, hash: u64) -> usize {
        // Fibonacci hashing: the top bits of the hash times 2**64 / phi. FxHash alone
        // leaves ids that differ in a digit or two in runs of neighbouring slots
        // (``lead-1``, ``lead-2``, ...).
        let bits = self.slots.len().trailing_zeros();
        (hash.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
    }

    /// The first slot from ``hash``'s home that holds ``hash`` and that ``is_it``
    /// accepts, or None at the first empty slot.
    fn probe(&self, hash: u64, is_it: impl Fn(&Slot<E>) -> bool) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mut i = self.home(hash);
        loop {
            let slot = &self.slots[i];
            if slot.hash == 0 {
                return None;
            }
            if slot.hash == hash && is_it(slot) {
                return Some(i);
            }
            i = (i + 1) & (self.slots.len() - 1);
        }
    }

    fn insert(&mut self, id: &[u8], hash: u64, entry: E) -> usize {
        if (self.len + 1) * 2 > self.slots.len() {
            let size = (self.slots.len() * 2).max(64);
            let old = std::mem::replace(
                &mut self.slots,
                (0..size).map(|_| Slot::default()).collect(),
            );
            for slot in old.into_iter().filter(|s| s.hash != 0) {
                let at = self.vacancy(slot.hash);
                self.slots[at] = slot;
            }
        }
        let at = self.vacancy(hash);
        self.slots[at] = Slot {
            hash,
            key: LeadKey::new(id),
            entry: Some(entry),
        };
        self.len += 1;
        at
    }

    fn vacancy(&self, hash: u64) -> usize {
        let mut i = self.home(hash);
        while self.slots[i].hash != 0 {
            i = (i + 1) & (self.slots.len() - 1);
        }
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(table: &mut LeadTable<usize>, id: &str, value: usize) -> usize {
        *table
            .get_or_insert_with(id.as_bytes(), || Ok::<_, ()>(value))
            .unwrap()
    }

    #[test]
    fn an_entry_is_made_once_and_found_after() {
        let mut table = LeadTable::default();
        assert_eq!(get(&mut table, "lead-1", 1), 1);
        assert_eq!(get(&mut table, "lead-1", 2), 1);
        assert_eq!(get(&mut table, "lead-2", 3), 3);
        let failed = table.get_or_insert_with(b"lead-3", || Err("no state"));
        assert_eq!(failed.err(), Some("no state"));
        assert_eq!(get(&mut table, "lead-3", 4), 4);
    }

    #[test]
    fn thousands_of_leads_and_long_ids_survive_growth() {
        let mut table = LeadTable::default();
        let long = "x".repeat(100);
        for i in 0..5_000 {
            get(&mut table, &format!("lead-{i}"), i);
            get(&mut table, &format!("{long}{i}"), 10_000 + i);
        }
        for i in (0..5_000).step_by(7) {
            assert_eq!(get(&mut table, &format!("lead-{i}"), 0), i);
            assert_eq!(get(&mut table, &format!("{long}{i}"), 0), 10_000 + i);
        }
        assert!(table.slots.len() >= 4 * table.len / 2);
    }

    #[test]
    fn ids_of_38_and_39_bytes_are_told_apart() {
        let mut table = LeadTable::default();
        let (a, b) = ("a".repeat(38), "a".repeat(39));
        assert_eq!(get(&mut table, &a, 1), 1);
        assert_eq!(get(&mut table, &b, 2), 2);
        assert_eq!(get(&mut table, &a, 0), 1);
    }

    #[test]
    fn lookups_by_hash_find_the_entry_or_nothing() {
        let mut table = LeadTable::default();
        assert!(table.by_hash(lead_hash(b"lead-1")).is_none());
        assert!(table.first_slot(lead_hash(b"lead-1")).is_none());
        get(&mut table, "lead-1", 7);
        assert_eq!(table.by_hash(lead_hash(b"lead-1")), Some(&7));
        assert!(table.by_hash(0).is_none());
        assert!(table.first_slot(lead_hash(b"lead-1")).is_some());
    }
}
