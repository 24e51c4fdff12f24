//! Group names and signal labels, interned process-wide: a lead's engagement is a short
//! vector of (id, value) pairs inside its state, not a map of strings elsewhere in memory
//! (with thousands of leads, every pointer followed is a cache miss).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::hashing::Fx;

struct Interner {
    names: Vec<Arc<str>>,
    ids: HashMap<Arc<str>, u32, Fx>,
}

fn interner() -> &'static Mutex<Interner> {
    static INTERNER: OnceLock<Mutex<Interner>> = OnceLock::new();
    INTERNER.get_or_init(|| {
        Mutex::new(Interner {
            names: Vec::new(),
            ids: HashMap::default(),
        })
    })
}

/// The id of ``name``, the same for the life of the process.
pub(crate) fn intern(name: &str) -> u32 {
    let mut table = interner().lock().expect("interner");
    if let Some(&id) = table.ids.get(name) {
        return id;
    }
    let id = table.names.len() as u32;
    let name: Arc<str> = Arc::from(name);
    table.names.push(name.clone());
    table.ids.insert(name, id);
    id
}

/// The name ``intern`` gave ``id``.
pub(crate) fn name_of(id: u32) -> Arc<str> {
    interner().lock().expect("interner").names[id as usize].clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_keeps_its_id_and_gives_it_back() {
        let a = intern("interner-test-a");
        let b = intern("interner-test-b");
        assert_ne!(a, b);
        assert_eq!(intern("interner-test-a"), a);
        assert_eq!(&*name_of(b), "interner-test-b");
    }
}
