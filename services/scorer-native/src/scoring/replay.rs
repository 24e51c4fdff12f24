//! ``baton replay``'s path: encoded LeadEvents (the values on ``leads.events``) read and
//! scored in a run, with the records read on a second thread while this one scores, and
//! cache prefetch hints a few records ahead for what scoring each one will touch.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, OnceLock};

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};

use super::{keep_first_event_at, Core};
use crate::event::{wire_traits, Ev};
use crate::ffi::prefetch;
use crate::lead_index::LeadIndex;
use crate::wire::Wire;

impl Core {
    /// ``Core.score_records`` (see its doc in ``bindings::core_methods``): the records of
    /// ``records`` from ``start`` read and scored, this thread reading the first
    /// ``parse_ahead_from`` and a second thread the rest, a segment at a time.
    pub(crate) fn score_records_from<'py>(
        &mut self,
        py: Python<'py>,
        states: &Bound<'py, PyDict>,
        index: &mut LeadIndex,
        records: &Bound<'py, PyList>,
        start: usize,
        first_event_at: &Bound<'py, PyDict>,
    ) -> PyResult<(Bound<'py, PyList>, usize, usize, usize)> {
        let mut run = RecordRun {
            states: states.clone(),
            first_event_at: first_event_at.clone(),
            out: PyList::empty(py),
            scored: 0,
            duplicates: 0,
            ahead: [0u64; PREFETCH_RING],
        };
        let end = records.len();
        // The first records are read here, then the rest a segment at a time on a second
        // thread (a run that stops early takes references to, and reads ahead, at most one
        // segment); each segment up to the first value that is not bytes, if any.
        let names = &self.wire_types.names.clone(); // a copy: ``self`` changes as it scores
        let (mut from, mut ahead) = (start, false);
        let mut to = end.min(start.saturating_add(parse_ahead_from().load(Ordering::Relaxed)));
        while from < end {
            let segment = bytes_in(records, from, to)?;
            let texts: Vec<&[u8]> = segment.iter().map(|bytes| bytes.as_bytes()).collect();
            run.ahead = [0u64; PREFETCH_RING]; // hints are by position in ``texts``
            let all = texts.is_empty()
                || self.read_and_score(py, index, &texts, names, &mut run, ahead)?;
            if !all || segment.len() < to - from {
                break;
            }
            (from, ahead) = (to, true);
            to = end.min(from + PARSE_SEGMENT);
        }
        Ok(run.done(start))
    }

    /// ``score_record`` for each of ``texts``, each read here, or with ``ahead`` on a
    /// second thread while this one scores (here too if no thread can be started: a
    /// limit on threads, say); false when the run stopped at one of them.
    fn read_and_score<'py>(
        &mut self,
        py: Python<'py>,
        index: &mut LeadIndex,
        texts: &[&[u8]],
        names: &[String],
        run: &mut RecordRun<'py>,
        ahead: bool,
    ) -> PyResult<bool> {
        if ahead {
            return std::thread::scope(|scope| -> PyResult<bool> {
                // A bounded hand-over: the reader stays at most a few chunks ahead, and stops
                // when this side stops (its next send fails once ``parsed`` is dropped, on any
                // return; the scope then waits for it).
                let (send, parsed) = mpsc::sync_channel::<Vec<Parsed<'_>>>(PARSE_CHUNKS_AHEAD);
                let reader = std::thread::Builder::new()
                    .name("baton-replay-read".to_owned())
                    .spawn_scoped(scope, move || {
                        for chunk in texts.chunks(PARSE_CHUNK) {
                            let chunk = chunk.iter().map(|text| Wire::parse(text, names)).collect();
                            if send.send(chunk).is_err() {
                                return;
                            }
                        }
                    });
                if reader.is_err() {
                    return self.read_and_score(py, index, texts, names, run, false);
                }
                let mut at = 0;
                for chunk in parsed.iter() {
                    for record in &chunk {
                        if !self.score_record(py, index, texts, at, record.as_ref(), run)? {
                            return Ok(false);
                        }
                        at += 1;
                    }
                }
                Ok(true)
            });
        }
        for at in 0..texts.len() {
            let parsed = Wire::parse(texts[at], names);
            let record = parsed.as_ref();
            if !self.score_record(py, index, texts, at, record, run)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// One record of ``score_records``: ``texts[at]``, read into ``parsed`` (None: not
    /// the exact layout), scored into ``run``; or false, and nothing done: the run stops
    /// at this record.
    fn score_record<'py>(
        &mut self,
        py: Python<'py>,
        index: &mut LeadIndex,
        texts: &[&[u8]],
        at: usize,
        parsed: Option<&(Wire<'_>, f64)>,
        run: &mut RecordRun<'py>,
    ) -> PyResult<bool> {
        // Hints, in stages: a record's memory; then (once it is in cache) its lead's
        // index slot; then (once that is) the lead's state; then (once that is) where
        // the lead's dedup window will write.
        if let Some(text) = texts.get(at + PREFETCH_RECORD_AHEAD) {
            prefetch(text.as_ptr(), text.len().min(PREFETCH_RECORD_BYTES));
        }
        let slot_at = at + PREFETCH_SLOT_AHEAD;
        run.ahead[slot_at % PREFETCH_RING] = texts
            .get(slot_at)
            .map_or(0, |text| index.prefetch_slot(text));
        index.prefetch_state(run.ahead[(at + PREFETCH_STATE_AHEAD) % PREFETCH_RING]);
        index.prefetch_window(py, run.ahead[(at + PREFETCH_WINDOW_AHEAD) % PREFETCH_RING]);
        let Some((wire, occurred)) = parsed else {
            return Ok(false);
        };
        let occurred = *occurred;
        if wire.anonymous_id.is_some() {
            return Ok(false);
        }
        let Ok(traits) = wire_traits(wire, py, &self.wire_types) else {
            return Ok(false); // pydantic decides about it (is_plain_object should have said so)
        };
        let ev = Ev::of_wire(wire, traits);
        let entry = index.entry(py, &run.states, &wire.lead_id)?;
        let mut st = entry.state.bind(py).try_borrow_mut()?;
        run.scored += 1;
        if !self.score_into(py, &mut st, &ev, occurred, &run.out)? {
            run.duplicates += 1;
            return Ok(true);
        }
        // ``first_at`` is never below the dict's value (other paths may lower that):
        // an event at or after it cannot be a lead's first.
        if occurred < entry.first_at {
            let lead = PyString::new(py, &wire.lead_id);
            keep_first_event_at(&run.first_event_at, lead.as_any(), occurred)?;
            entry.first_at = occurred;
        }
        Ok(true)
    }
}

/// How many records ahead ``score_records`` has each thing fetched into cache: the
/// record itself, its lead's index slot (the record is in cache by then), the lead's
/// state (found through that slot), and the end of the lead's dedup window and its
/// spilled groups and signals (read from that state). The ring keeps each record's lead
/// hash from the slot stage for the later ones; it must be longer than the slot stage
/// is ahead of the last. Each call starts with an empty ring: its first records get no
/// hints (speed only).
const PREFETCH_RECORD_AHEAD: usize = 16;
const PREFETCH_SLOT_AHEAD: usize = 8;
const PREFETCH_STATE_AHEAD: usize = 4;
const PREFETCH_WINDOW_AHEAD: usize = 2;
const PREFETCH_RING: usize = 16; // above PREFETCH_SLOT_AHEAD
/// A record's first bytes: a whole LeadEvent as ``to_bytes`` writes a typical one (about
/// 420 bytes).
const PREFETCH_RECORD_BYTES: usize = 512;

/// ``score_records`` as it goes: the leads' states and first event times it writes to,
/// the transitions, the records scored and the duplicates among them, and the prefetch
/// ring.
struct RecordRun<'py> {
    states: Bound<'py, PyDict>,
    first_event_at: Bound<'py, PyDict>,
    out: Bound<'py, PyList>,
    scored: usize,
    duplicates: usize,
    ahead: [u64; PREFETCH_RING],
}

impl<'py> RecordRun<'py> {
    /// What ``score_records`` returns for a run from ``start``: every record it scored
    /// (duplicates included) was the next one, so it stopped at ``start + scored``.
    fn done(self, start: usize) -> (Bound<'py, PyList>, usize, usize, usize) {
        (self.out, self.scored, self.duplicates, start + self.scored)
    }
}

/// ``records[from..to]`` up to the first that is not bytes, each with a reference of its
/// own (held while it is read, on this thread or the other).
fn bytes_in<'py>(
    records: &Bound<'py, PyList>,
    from: usize,
    to: usize,
) -> PyResult<Vec<Bound<'py, PyBytes>>> {
    let mut held = Vec::with_capacity(to.saturating_sub(from));
    for at in from..to {
        match records.get_item(at)?.downcast_into::<PyBytes>() {
            Ok(bytes) => held.push(bytes),
            Err(_) => break,
        }
    }
    Ok(held)
}

/// A record read by ``Wire::parse``.
type Parsed<'a> = Option<(Wire<'a>, f64)>;

/// Records per hand-over from the reading thread, and how many hand-overs it may be
/// ahead: enough that scoring never waits on it, few enough to stay in cache.
const PARSE_CHUNK: usize = 64;
const PARSE_CHUNKS_AHEAD: usize = 4;
/// At most how many records one thread reads for a run (then the next segment's thread):
/// what a run that stops early can have taken references to and read ahead for nothing.
const PARSE_SEGMENT: usize = 1024;

/// How many of a run's records ``score_records`` reads itself before it hands the rest
/// to a second thread: 64 (a thread costs tens of microseconds; 64 records take over a
/// hundred to score), or all of them on a single core.
pub(crate) fn parse_ahead_from() -> &'static AtomicUsize {
    static FROM: OnceLock<AtomicUsize> = OnceLock::new();
    FROM.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        AtomicUsize::new(if cores > 1 { 64 } else { usize::MAX })
    })
}
