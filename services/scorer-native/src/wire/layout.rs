//! The reader of the one layout ``LeadEvent.to_bytes`` writes (most records on
//! ``leads.events``): the keys in declaration order, no whitespace, no escapes. Anything
//! else gives None and goes to serde.

use std::borrow::Cow;
use std::collections::HashMap;

use super::{Wire, WirePage};

/// A reader of the one layout ``to_bytes`` writes: every key in declaration order, no
/// whitespace, no escapes. It reads that layout without serde's per-key dispatch and
/// gives up (None) on anything else — other key orders, spacing, an escape or a control
/// character in any string, an exponent — which then goes to serde, so what it accepts
/// is a subset of what serde accepts, read to the same values.
pub(super) struct Layout<'a> {
    text: &'a str,
    at: usize,
}

/// How deep free-form values may nest here (pydantic's limit is deeper; serde's too).
const LAYOUT_MAX_DEPTH: usize = 64;

/// Where the first ``"``, ``\\`` or control character (below 0x20) is, eight bytes at a
/// time: a byte's high bit in ``hits`` is set where it equals one (or is below 0x20),
/// exactly so at the lowest such byte (a borrow only carries upward, from a hit).
fn string_stop(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let zero_at = |x: u64| x.wrapping_sub(ONES) & !x;
    let mut at = 0;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let hits = (zero_at(word ^ (ONES * u64::from(b'"')))
            | zero_at(word ^ (ONES * u64::from(b'\\')))
            | (word.wrapping_sub(ONES * 0x20) & !word))
            & HIGHS;
        if hits != 0 {
            return Some(at + hits.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    let rest = bytes[at..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
    Some(at + rest)
}

impl<'a> Layout<'a> {
    pub(super) fn read(text: &'a str) -> Option<Wire<'a>> {
        let mut r = Layout { text, at: 0 };
        r.expect(b"{\"schema\":1,\"event_id\":")?;
        let event_id = r.string()?;
        r.expect(b",\"lead_id\":")?;
        let lead_id = r.string()?;
        r.expect(b",\"user_id\":")?;
        let user_id = r.opt_string()?;
        r.expect(b",\"anonymous_id\":")?;
        let anonymous_id = r.opt_string()?;
        r.expect(b",\"email\":")?;
        let email = r.opt_string()?;
        r.expect(b",\"type\":")?;
        let type_ = r.string()?;
        r.expect(b",\"name\":")?;
        let name = r.opt_string()?;
        r.expect(b",\"occurred_at\":")?;
        let occurred_at = r.string()?;
        r.expect(b",\"received_at\":")?;
        let received_at = r.string()?;
        r.expect(b",\"source\":")?;
        let source = r.string()?;
        r.expect(b",\"page_category\":")?;
        let page_category = r.opt_string()?;
        r.expect(b",\"page\":")?;
        let page = r.page()?;
        r.expect(b",\"campaign\":")?;
        let campaign = r.campaign()?;
        r.expect(b",\"user_agent\":")?;
        let user_agent = r.opt_string()?;
        r.expect(b",\"ip\":")?;
        let ip = r.opt_string()?;
        r.expect(b",\"group_id\":")?;
        let group_id = r.opt_string()?;
        r.expect(b",\"previous_id\":")?;
        let previous_id = r.opt_string()?;
        r.expect(b",\"possible_duplicate\":")?;
        let possible_duplicate = if r.expect(b"false").is_some() {
            false
        } else {
            r.expect(b"true")?;
            true
        };
        r.expect(b",\"properties\":")?;
        let properties = r.object()?;
        r.expect(b",\"traits\":")?;
        let traits = r.object()?;
        r.expect(b",\"context\":")?;
        let context = r.object()?;
        // Privacy mode: a sealed event is left to Python (its fields are empty here).
        r.expect(b",\"sealed\":null,\"email_id\":")?;
        let email_id = r.opt_string()?;
        r.expect(b"}")?;
        if r.at != text.len() {
            return None;
        }
        let text = |s: &'a str| Cow::Borrowed(s);
        Some(Wire {
            schema: 1,
            event_id: text(event_id),
            lead_id: text(lead_id),
            user_id: user_id.map(text),
            anonymous_id: anonymous_id.map(text),
            email: email.map(text),
            type_: text(type_),
            name: name.map(text),
            occurred_at: text(occurred_at),
            received_at: text(received_at),
            source: text(source),
            page_category: page_category.map(text),
            page,
            campaign,
            user_agent: user_agent.map(text),
            ip: ip.map(text),
            group_id: group_id.map(text),
            previous_id: previous_id.map(text),
            possible_duplicate,
            properties,
            traits,
            context,
            sealed: None,
            email_id: email_id.map(text),
        })
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn expect(&mut self, literal: &[u8]) -> Option<()> {
        let rest = self.text.as_bytes().get(self.at..)?;
        rest.starts_with(literal).then(|| self.at += literal.len())
    }

    /// A string without escapes or control characters (serde refuses raw control
    /// characters; an escape needs decoding): its text, between the quotes.
    fn string(&mut self) -> Option<&'a str> {
        self.expect(b"\"")?;
        let bytes = self.text.as_bytes();
        let start = self.at;
        let end = start + string_stop(&bytes[start..])?;
        if bytes[end] != b'"' {
            return None;
        }
        self.at = end + 1;
        self.text.get(start..end) // quotes are ASCII: always on a character boundary
    }

    fn opt_string(&mut self) -> Option<Option<&'a str>> {
        if self.expect(b"null").is_some() {
            return Some(None);
        }
        self.string().map(Some)
    }

    /// ``null`` or the page with its four keys in order.
    fn page(&mut self) -> Option<Option<WirePage<'a>>> {
        if self.expect(b"null").is_some() {
            return Some(None);
        }
        self.expect(b"{\"url\":")?;
        let url = self.opt_string()?;
        self.expect(b",\"path\":")?;
        let path = self.opt_string()?;
        self.expect(b",\"referrer\":")?;
        let referrer = self.opt_string()?;
        self.expect(b",\"title\":")?;
        let title = self.opt_string()?;
        self.expect(b"}")?;
        Some(Some(WirePage {
            url: url.map(Cow::Borrowed),
            path: path.map(Cow::Borrowed),
            referrer: referrer.map(Cow::Borrowed),
            title: title.map(Cow::Borrowed),
        }))
    }

    /// String to string; a repeated key keeps its last value, as serde's map does.
    fn campaign(&mut self) -> Option<HashMap<Cow<'a, str>, Cow<'a, str>>> {
        let mut out = HashMap::new();
        self.expect(b"{")?;
        if self.expect(b"}").is_some() {
            return Some(out);
        }
        loop {
            let key = self.string()?;
            self.expect(b":")?;
            out.insert(Cow::Borrowed(key), Cow::Borrowed(self.string()?));
            if self.expect(b"}").is_some() {
                return Some(out);
            }
            self.expect(b",")?;
        }
    }

    /// A free-form object's JSON text, its syntax checked.
    fn object(&mut self) -> Option<&'a str> {
        let start = self.at;
        if self.peek()? != b'{' {
            return None;
        }
        self.value(0)?;
        self.text.get(start..self.at)
    }

    fn value(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' | b'[' if depth >= LAYOUT_MAX_DEPTH => None,
            b'{' => {
                self.at += 1;
                if self.expect(b"}").is_some() {
                    return Some(());
                }
                loop {
                    self.string()?;
                    self.expect(b":")?;
                    self.value(depth + 1)?;
                    if self.expect(b"}").is_some() {
                        return Some(());
                    }
                    self.expect(b",")?;
                }
            }
            b'[' => {
                self.at += 1;
                if self.expect(b"]").is_some() {
                    return Some(());
                }
                loop {
                    self.value(depth + 1)?;
                    if self.expect(b"]").is_some() {
                        return Some(());
                    }
                    self.expect(b",")?;
                }
            }
            b't' => self.expect(b"true"),
            b'f' => self.expect(b"false"),
            b'n' => self.expect(b"null"),
            _ => self.number(),
        }
    }

    /// ``-?(0|[1-9][0-9]*)(.[0-9]+)?``; exponents are left to serde.
    fn number(&mut self) -> Option<()> {
        let _ = self.expect(b"-");
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.expect(b".").is_some() {
            if !self.peek()?.is_ascii_digit() {
                return None;
            }
            self.digits();
        }
        if matches!(self.peek()?, b'e' | b'E') {
            return None;
        }
        Some(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.at += 1;
        }
    }
}

/// Where ``LeadEvent.to_bytes`` puts the lead id, read at a glance (for prefetch hints
/// only: a record it misreads wastes the hint, nothing else).
pub(crate) fn lead_id_at_a_glance(record: &[u8]) -> Option<&[u8]> {
    let rest = record.strip_prefix(b"{\"schema\":1,\"event_id\":\"")?;
    let rest = rest[string_stop(rest)?..].strip_prefix(b"\",\"lead_id\":\"")?;
    let end = string_stop(rest)?;
    (rest[end] == b'"').then(|| &rest[..end])
}

/// Whether this reader reads ``record`` (else serde reads it, or pydantic decides).
pub(crate) fn reads_exact_layout(record: &[u8]) -> bool {
    std::str::from_utf8(record).is_ok_and(|text| Layout::read(text).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tests::RECORD;

    #[test]
    fn reads_the_layout_to_bytes_writes_to_what_serde_reads() {
        let ours = Layout::read(RECORD).expect("the exact layout");
        let serde: Wire<'_> = serde_json::from_str(RECORD).expect("valid JSON");
        assert_eq!(ours.event_id, serde.event_id);
        assert_eq!(ours.lead_id, serde.lead_id);
        assert_eq!(ours.email, serde.email);
        assert_eq!(ours.type_, serde.type_);
        assert_eq!(ours.name, serde.name);
        assert_eq!(ours.occurred_at, serde.occurred_at);
        assert_eq!(ours.page_category, serde.page_category);
        assert_eq!(ours.campaign, serde.campaign);
        assert_eq!(ours.anonymous_id, serde.anonymous_id);
        assert_eq!(ours.possible_duplicate, serde.possible_duplicate);
        assert_eq!(ours.properties, serde.properties);
        assert_eq!(ours.traits, serde.traits);
        assert_eq!(ours.context, serde.context);
    }

    #[test]
    fn any_other_layout_is_left_to_serde() {
        let variants = [
            RECORD.replacen("\",\"", "\", \"", 1),          // a space
            format!("{RECORD} "),                           // trailing bytes
            RECORD.replacen("\"e-1\"", "\"e\\u002d1\"", 1), // an escape
            RECORD.replacen("2.5", "2.5e0", 1),             // an exponent
            RECORD.replacen("\"schema\":1,", "", 1),        // a key missing
            RECORD.replacen(
                "{\"schema\":1,\"event_id\":\"e-1\",",
                "{\"event_id\":\"e-1\",\"schema\":1,",
                1,
            ),
        ];
        for text in &variants {
            assert!(Layout::read(text).is_none(), "{text}");
        }
        assert!(reads_exact_layout(RECORD.as_bytes()));
        assert!(!reads_exact_layout(b"\xff"));
    }

    #[test]
    fn free_form_values_nest_at_most_64_deep() {
        let nested = |depth: usize| {
            let value = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            RECORD.replacen("{\"company\":\"Acme\"}", &format!("{{\"x\":{value}}}"), 1)
        };
        assert!(Layout::read(&nested(63)).is_some());
        assert!(Layout::read(&nested(64)).is_none());
    }

    #[test]
    fn string_stop_finds_the_first_quote_backslash_or_control_character() {
        assert_eq!(string_stop(b"abc\"def"), Some(3));
        assert_eq!(string_stop(b"abcdefghijk\\"), Some(11));
        assert_eq!(string_stop(b"abcdefgh\x1f\""), Some(8));
        assert_eq!(string_stop("caf\u{e9}\"".as_bytes()), Some(5)); // bytes past 0x7f pass
        assert_eq!(string_stop(b"no stop here"), None);
        for at in 0..20 {
            let mut text = vec![b'a'; 20];
            text[at] = b'"';
            assert_eq!(string_stop(&text), Some(at));
        }
    }

    #[test]
    fn the_lead_id_is_read_at_a_glance() {
        assert_eq!(lead_id_at_a_glance(RECORD.as_bytes()), Some(&b"lead-7"[..]));
        assert_eq!(
            lead_id_at_a_glance(b"{\"schema\":1,\"event_id\":\"e\"}"),
            None
        );
        assert_eq!(lead_id_at_a_glance(b"not json"), None);
    }
}
