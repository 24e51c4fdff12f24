//! Kafka record batches (message format v2, uncompressed) read without Python.
//!
//! Batch layout (big-endian): baseOffset i64, batchLength i32, partitionLeaderEpoch i32,
//! magic i8, crc u32 (CRC-32C of everything after it), attributes i16, lastOffsetDelta
//! i32, baseTimestamp i64, maxTimestamp i64, producerId i64, producerEpoch i16,
//! baseSequence i32, record count i32, then the records: length, attributes i8,
//! timestampDelta, offsetDelta, key length, key, value length, value, headers — the
//! lengths and deltas zigzag varints.

use super::crc32c::crc32c;

const LOG_OVERHEAD: usize = 12; // baseOffset and batchLength
const HEADER: usize = 61; // a v2 batch up to its first record
const CRC_FROM: usize = 21; // the CRC covers the batch from its attributes on
const COMPRESSION: i16 = 0x07;
const LOG_APPEND_TIME: i16 = 0x08;
const CONTROL: i16 = 0x20;

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}

/// A read position in a batch.
struct Cursor<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    /// A zigzag varint (up to 64 bits), or None past the end or at a malformed one.
    fn varint(&mut self) -> Option<i64> {
        let mut raw: u64 = 0;
        let mut shift = 0;
        loop {
            let b = *self.buf.get(self.at)?;
            self.at += 1;
            if shift == 63 && b > 1 {
                return None; // past 64 bits
            }
            raw |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some((raw >> 1) as i64 ^ -((raw & 1) as i64));
            }
            shift += 7;
            if shift > 63 {
                return None;
            }
        }
    }

    /// A length-prefixed byte string; a negative length is null.
    fn bytes(&mut self) -> Option<Option<&'a [u8]>> {
        let len = self.varint()?;
        if len < 0 {
            return Some(None);
        }
        let end = self.at.checked_add(usize::try_from(len).ok()?)?;
        let out = self.buf.get(self.at..end)?;
        self.at = end;
        Some(Some(out))
    }
}

/// One record of a batch: what the reader keeps of it.
pub(super) struct Record<'a> {
    pub(super) offset: i64,
    pub(super) timestamp: i64,
    pub(super) key: Option<&'a [u8]>,
    pub(super) value: Option<&'a [u8]>,
}

/// The records of `[start, end)` in `raw` and the position after them, as the general
/// path reads them; None where it must decide.
pub(super) fn parse(raw: &[u8], start: i64, end: i64) -> Option<(Vec<Record<'_>>, i64)> {
    let mut out = Vec::new();
    let mut position = start;
    let mut at = 0;
    while position < end && raw.len() - at >= LOG_OVERHEAD {
        let base_offset = be_i64(raw, at);
        let size = LOG_OVERHEAD + usize::try_from(be_i32(raw, at + 8)).ok()?;
        if raw.len() - at < size {
            break; // the fetch ended inside this batch: the next fetch reads it
        }
        let batch = &raw[at..at + size];
        at += size;
        if batch.len() < HEADER || batch[16] != 2 || crc32c(&batch[CRC_FROM..]) != be_u32(batch, 17)
        {
            return None;
        }
        let attributes = be_i16(batch, 21);
        let next_offset = base_offset.checked_add(i64::from(be_i32(batch, 23)) + 1)?;
        if attributes & CONTROL != 0 {
            position = next_offset; // transaction markers
            continue;
        }
        if attributes & COMPRESSION != 0 {
            return None;
        }
        let first_timestamp = be_i64(batch, 27);
        let max_timestamp = be_i64(batch, 35);
        let log_append_time = attributes & LOG_APPEND_TIME != 0;
        let mut c = Cursor {
            buf: batch,
            at: HEADER,
        };
        let count = usize::try_from(be_i32(batch, 57)).ok()?;
        let mut read = 0;
        while read < count {
            read += 1;
            let length = usize::try_from(c.varint()?).ok()?;
            let record_end = c.at.checked_add(length)?;
            if record_end > batch.len() || *batch.get(c.at)? >= 0x80 {
                return None; // attributes: one byte (unused)
            }
            c.at += 1;
            let timestamp_delta = c.varint()?;
            let offset = base_offset.checked_add(c.varint()?)?;
            let key = c.bytes()?;
            let value = c.bytes()?;
            // Headers are not kept, but checked as the general path reads them.
            for _ in 0..usize::try_from(c.varint()?).ok()? {
                std::str::from_utf8(c.bytes()??).ok()?;
                c.bytes()?;
            }
            if c.at != record_end {
                return None;
            }
            if offset < start {
                continue; // a batch can begin before the position
            }
            if offset >= end {
                break;
            }
            let timestamp = if log_append_time {
                max_timestamp
            } else {
                first_timestamp.checked_add(timestamp_delta)?
            };
            out.push(Record {
                offset,
                timestamp,
                key,
                value,
            });
        }
        if read == count && c.at != batch.len() {
            return None; // bytes after the last record
        }
        position = next_offset;
    }
    Some((out, position))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_are_zigzag() {
        let mut c = Cursor {
            buf: &[0x00, 0x01, 0x02, 0x03, 0xac, 0x02],
            at: 0,
        };
        let got: Vec<i64> = (0..5).map(|_| c.varint().unwrap()).collect();
        assert_eq!(got, vec![0, -1, 1, -2, 150]);
        assert!(Cursor {
            buf: &[0x80],
            at: 0
        }
        .varint()
        .is_none());
    }

    fn varint(v: i64, out: &mut Vec<u8>) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        while z >= 0x80 {
            out.push((z as u8 & 0x7f) | 0x80);
            z >>= 7;
        }
        out.push(z as u8);
    }

    fn bytes(b: Option<&[u8]>, out: &mut Vec<u8>) {
        match b {
            None => varint(-1, out),
            Some(b) => {
                varint(b.len() as i64, out);
                out.extend_from_slice(b);
            }
        }
    }

    /// A v2 batch as a producer writes it: records of (offset delta, timestamp delta,
    /// key, value), no headers.
    fn batch(
        base_offset: i64,
        base_ts: i64,
        attributes: i16,
        records: &[(i64, i64, &[u8], &[u8])],
    ) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&attributes.to_be_bytes());
        let last = records.iter().map(|r| r.0).max().unwrap_or(0) as i32;
        body.extend_from_slice(&last.to_be_bytes());
        body.extend_from_slice(&base_ts.to_be_bytes());
        let max_ts = base_ts + records.iter().map(|r| r.1).max().unwrap_or(0);
        body.extend_from_slice(&max_ts.to_be_bytes());
        body.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
        body.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
        body.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
        body.extend_from_slice(&(records.len() as i32).to_be_bytes());
        for &(offset_delta, ts_delta, key, value) in records {
            let mut record = vec![0u8]; // attributes
            varint(ts_delta, &mut record);
            varint(offset_delta, &mut record);
            bytes(Some(key).filter(|k| !k.is_empty()), &mut record);
            bytes(Some(value), &mut record);
            varint(0, &mut record); // headers
            varint(record.len() as i64, &mut body);
            body.extend_from_slice(&record);
        }
        let mut part = 0i32.to_be_bytes().to_vec(); // partition leader epoch
        part.push(2); // magic
        part.extend_from_slice(&crc32c(&body).to_be_bytes());
        part.extend_from_slice(&body);
        let mut out = base_offset.to_be_bytes().to_vec();
        out.extend_from_slice(&(part.len() as i32).to_be_bytes());
        out.extend_from_slice(&part);
        out
    }

    fn offsets(records: &[Record<'_>]) -> Vec<i64> {
        records.iter().map(|r| r.offset).collect()
    }

    #[test]
    fn reads_every_record_of_a_range_and_the_offset_after_it() {
        let mut raw = batch(10, 1_000, 0, &[(0, 0, b"k0", b"v0"), (1, 5, b"", b"v1")]);
        raw.extend(batch(12, 2_000, 0, &[(0, 7, b"k2", b"v2")]));
        let (records, position) = parse(&raw, 10, 100).expect("plain batches");
        assert_eq!(offsets(&records), [10, 11, 12]);
        assert_eq!(position, 13);
        let r = &records[1];
        assert_eq!(
            (r.timestamp, r.key, r.value),
            (1_005, None, Some(&b"v1"[..]))
        );
        assert_eq!(records[2].timestamp, 2_007);
    }

    #[test]
    fn records_outside_the_range_are_skipped() {
        let raw = batch(
            10,
            0,
            0,
            &[(0, 0, b"", b"a"), (1, 0, b"", b"b"), (2, 0, b"", b"c")],
        );
        let (records, _) = parse(&raw, 11, 12).expect("plain batch");
        assert_eq!(offsets(&records), [11]);
    }

    #[test]
    fn a_batch_cut_short_by_the_fetch_is_left_for_the_next() {
        let mut raw = batch(0, 0, 0, &[(0, 0, b"", b"a")]);
        let second = batch(1, 0, 0, &[(0, 0, b"", b"b")]);
        raw.extend_from_slice(&second[..second.len() - 3]);
        let (records, position) = parse(&raw, 0, 10).expect("the first batch");
        assert_eq!((offsets(&records), position), (vec![0], 1));
    }

    #[test]
    fn log_append_time_gives_every_record_the_batch_time() {
        let raw = batch(
            0,
            1_000,
            LOG_APPEND_TIME,
            &[(0, 0, b"", b"a"), (1, 9, b"", b"b")],
        );
        let (records, _) = parse(&raw, 0, 10).expect("plain batch");
        assert_eq!(
            records.iter().map(|r| r.timestamp).collect::<Vec<_>>(),
            [1_009, 1_009]
        );
    }

    #[test]
    fn control_batches_are_passed_over() {
        let mut raw = batch(0, 0, CONTROL, &[(0, 0, b"", b"marker")]);
        raw.extend(batch(1, 0, 0, &[(0, 0, b"", b"a")]));
        let (records, position) = parse(&raw, 0, 10).expect("plain batches");
        assert_eq!((offsets(&records), position), (vec![1], 2));
    }

    #[test]
    fn what_the_general_reader_must_decide_is_refused() {
        let good = batch(0, 0, 0, &[(0, 0, b"", b"a")]);
        let mut bad_crc = good.clone();
        *bad_crc.last_mut().unwrap() ^= 1;
        assert!(parse(&bad_crc, 0, 10).is_none());
        assert!(parse(&batch(0, 0, 1, &[(0, 0, b"", b"a")]), 0, 10).is_none()); // gzip
        let mut old_magic = good.clone();
        old_magic[16] = 1;
        assert!(parse(&old_magic, 0, 10).is_none());
    }
}
