//! A ``LeadEvent`` as its bytes on ``leads.events`` (``LeadEvent.to_bytes``), read without
//! Python: the exact layout ``to_bytes`` writes by :mod:`layout`, any other JSON by serde,
//! and anything either would read differently from pydantic refused (None), so pydantic
//! decides about it.

mod layout;

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::timestamps::epoch_micros;

use layout::Layout;
pub(crate) use layout::{lead_id_at_a_glance, reads_exact_layout};

/// ``LeadEvent.page``: parsed to validate it; matchers read the page through ``context``.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // the fields are read by serde only, to validate them
pub(crate) struct WirePage<'a> {
    #[serde(borrow, default)]
    url: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    path: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    referrer: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    title: Option<Cow<'a, str>>,
}

/// A LeadEvent exactly as ``to_bytes`` writes it: every field present, no others. Any
/// other layout fails to parse here and is left to pydantic, which decides about it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // every field is parsed (that is the validation); not all are read
pub(crate) struct Wire<'a> {
    pub(crate) schema: u8,
    #[serde(borrow)]
    pub(crate) event_id: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) lead_id: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) user_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) anonymous_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) email: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "type")]
    pub(crate) type_: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) occurred_at: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) received_at: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) source: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) page_category: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) page: Option<WirePage<'a>>,
    #[serde(borrow)]
    pub(crate) campaign: HashMap<Cow<'a, str>, Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) user_agent: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) ip: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) group_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) previous_id: Option<Cow<'a, str>>,
    pub(crate) possible_duplicate: bool,
    #[serde(borrow, deserialize_with = "raw_text")]
    pub(crate) properties: &'a str,
    #[serde(borrow, deserialize_with = "raw_text")]
    pub(crate) traits: &'a str,
    #[serde(borrow, deserialize_with = "raw_text")]
    pub(crate) context: &'a str,
    /// Privacy mode's sealed personal fields: a record that has them is left to Python.
    #[serde(borrow)]
    pub(crate) sealed: Option<Cow<'a, str>>,
    /// Privacy mode's pseudonym of the email: for merges, which Python makes.
    #[serde(borrow)]
    pub(crate) email_id: Option<Cow<'a, str>>,
}

/// A free-form value's JSON text, syntax checked by serde.
fn raw_text<'de, D: serde::Deserializer<'de>>(value: D) -> Result<&'de str, D::Error> {
    <&'de RawValue>::deserialize(value).map(RawValue::get)
}

/// A free-form object (``properties``, ``traits``, ``context``) that pydantic reads as
/// serde does. serde only checks a raw value's syntax; pydantic (jiter) also refuses lone
/// surrogate escapes, control characters in strings, integers of more than 4,300 digits
/// and deep nesting. Anything near those (any surrogate escape, a number run of over
/// 1,000 characters or with an exponent, nesting past 64) is left to pydantic.
pub(crate) fn is_plain_object(raw: &str) -> bool {
    let text = raw.as_bytes();
    if text == b"{}" {
        return true;
    }
    if text.first() != Some(&b'{') {
        return false;
    }
    let (mut depth, mut i) = (0usize, 0usize);
    while i < text.len() {
        match text[i] {
            b'"' => {
                i += 1;
                while text[i] != b'"' {
                    match text[i] {
                        b'\\' => {
                            if text[i + 1] == b'u' && matches!(text[i + 2], b'd' | b'D') {
                                return false; // a surrogate half, paired or not
                            }
                            i += 2;
                        }
                        0..=0x1f => return false,
                        _ => i += 1,
                    }
                }
            }
            b'{' | b'[' => {
                depth += 1;
                if depth > 64 {
                    return false;
                }
            }
            b'}' | b']' => depth -= 1,
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i + 1 < text.len()
                    && matches!(text[i + 1], b'0'..=b'9' | b'.' | b'-' | b'+' | b'e' | b'E')
                {
                    i += 1;
                    if matches!(text[i], b'e' | b'E') {
                        return false;
                    }
                }
                if i - start > 1_000 {
                    return false;
                }
            }
            _ => {}
        }
        i += 1;
    }
    true
}

impl<'a> Wire<'a> {
    /// The event and its ``occurred_at`` (epoch seconds), or None: not this layout.
    pub(crate) fn parse(bytes: &'a [u8], types: &[String]) -> Option<(Self, f64)> {
        // One UTF-8 check of the whole record (fast over ASCII), then a parser that does
        // not check each string again: a record with invalid UTF-8 anywhere fails here,
        // as it fails serde (and pydantic) in a string or as a syntax error elsewhere.
        let text = std::str::from_utf8(bytes).ok()?;
        let wire = match Layout::read(text) {
            Some(wire) => wire,
            None => serde_json::from_str::<Wire<'a>>(text).ok()?,
        };
        if wire.schema != 1
            || wire.sealed.is_some()
            || !is_plain_object(wire.properties)
            || !is_plain_object(wire.traits)
            || !is_plain_object(wire.context)
            || !types.iter().any(|name| *name == wire.type_)
            || epoch_micros(&wire.received_at).is_none()
        {
            return None;
        }
        let micros = epoch_micros(&wire.occurred_at)?;
        // What ``datetime.timestamp()`` computes: whole microseconds / 10**6, correctly
        // rounded (exact here: the count fits in a double's 53 bits, checked above).
        Some((wire, micros as f64 / 1e6))
    }
}

/// ``rules._urls`` of an encoded event, read from its JSON (a repeated key: the last one,
/// as pydantic reads it); None when a value is not plain to read here.
pub(crate) fn wire_urls(wire: &Wire<'_>) -> Option<Vec<String>> {
    type Object<'a> = HashMap<Cow<'a, str>, &'a RawValue>;
    fn take(object: &Object<'_>, out: &mut Vec<String>) -> Option<()> {
        for key in ["url", "path"] {
            if let Some(value) = object.get(key) {
                if value.get().starts_with('"') {
                    out.push(
                        serde_json::from_str::<Cow<'_, str>>(value.get())
                            .ok()?
                            .into_owned(),
                    );
                }
            }
        }
        Some(())
    }
    let mut out = Vec::new();
    if wire.properties != "{}" {
        take(
            &serde_json::from_str::<Object<'_>>(wire.properties).ok()?,
            &mut out,
        )?;
    }
    if wire.context != "{}" {
        let context = serde_json::from_str::<Object<'_>>(wire.context).ok()?;
        if let Some(page) = context.get("page") {
            if page.get().starts_with('{') {
                take(
                    &serde_json::from_str::<Object<'_>>(page.get()).ok()?,
                    &mut out,
                )?;
            }
        }
    }
    Some(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A LeadEvent as ``LeadEvent.to_bytes`` writes it.
    pub(crate) const RECORD: &str = concat!(
        r#"{"schema":1,"event_id":"e-1","lead_id":"lead-7","user_id":null,"anonymous_id":null,"#,
        r#""email":"a@example.test","type":"page","name":"Pricing","#,
        r#""occurred_at":"2024-03-01T12:30:05.250000Z","received_at":"2024-03-01T12:30:06Z","#,
        r#""source":"web","page_category":"pricing","page":null,"campaign":{"utm_source":"ads"},"#,
        r#""user_agent":null,"ip":null,"group_id":null,"previous_id":null,"#,
        r#""possible_duplicate":false,"#,
        r#""properties":{"url":"https://x.test/pricing","n":[1,2.5,{"a":null}]},"#,
        r#""traits":{"company":"Acme"},"context":{"page":{"path":"/pricing"}},"#,
        r#""sealed":null,"email_id":null}"#,
    );

    fn types() -> Vec<String> {
        ["track", "identify", "page", "screen", "group", "alias"]
            .map(str::to_owned)
            .to_vec()
    }

    #[test]
    fn a_sealed_record_is_left_to_python_an_older_one_is_read() {
        let sealed = RECORD.replacen("\"sealed\":null", "\"sealed\":\"v1:p_1:x\"", 1);
        assert!(Wire::parse(sealed.as_bytes(), &types()).is_none());
        let pseudonymous = RECORD.replacen("\"email_id\":null", "\"email_id\":\"p_1\"", 1);
        assert!(Layout::read(&pseudonymous).is_some());
        let older = RECORD.replacen(",\"sealed\":null,\"email_id\":null", "", 1);
        assert!(Wire::parse(older.as_bytes(), &types()).is_some());
    }

    #[test]
    fn a_record_parses_with_its_occurred_at_in_epoch_seconds() {
        let (wire, occurred) = Wire::parse(RECORD.as_bytes(), &types()).expect("plain");
        assert_eq!(occurred, 1_709_296_205.25);
        assert_eq!(wire.lead_id, "lead-7");
        assert_eq!(wire.name.as_deref(), Some("Pricing"));
    }

    #[test]
    fn another_json_layout_parses_through_serde() {
        let spaced = RECORD.replace("\",\"", "\", \"");
        let (wire, _) = Wire::parse(spaced.as_bytes(), &types()).expect("serde reads it");
        assert_eq!(wire.event_id, "e-1");
    }

    #[test]
    fn what_pydantic_must_decide_is_refused() {
        let refused = [
            RECORD.replace("\"type\":\"page\"", "\"type\":\"click\""), // unknown type
            RECORD.replace("\"schema\":1", "\"schema\":2"),
            RECORD.replace("12:30:06Z", "12:30:06"), // no zone
            RECORD.replace("\"ip\":null,", "\"ip\":null,\"extra\":1,"),
            RECORD.replace("{\"company\":\"Acme\"}", "{\"c\":\"\\ud800\"}"), // a surrogate
            RECORD.replace("{\"company\":\"Acme\"}", "[]"),
        ];
        for text in &refused {
            assert!(Wire::parse(text.as_bytes(), &types()).is_none(), "{text}");
        }
        assert!(Wire::parse(b"{\"schema\":1,\xff}", &types()).is_none());
    }

    #[test]
    fn plain_objects_stay_clear_of_what_jiter_refuses() {
        assert!(is_plain_object("{}"));
        assert!(is_plain_object(r#"{"a":[1,-2.5,"x\"y"],"b":{"c":null}}"#));
        assert!(!is_plain_object("[]"));
        assert!(!is_plain_object(r#"{"a":"\uD83D\uDE00"}"#));
        assert!(!is_plain_object(r#"{"a":1e5}"#));
        assert!(!is_plain_object(&format!(
            r#"{{"a":{}}}"#,
            "9".repeat(1_002)
        )));
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(64), "]".repeat(64));
        assert!(!is_plain_object(&deep));
    }

    #[test]
    fn urls_come_from_properties_and_the_context_page_last_key_winning() {
        let (wire, _) = Wire::parse(RECORD.as_bytes(), &types()).expect("plain");
        assert_eq!(
            wire_urls(&wire),
            Some(vec![
                "https://x.test/pricing".to_owned(),
                "/pricing".to_owned()
            ])
        );
        let repeated = RECORD.replace(
            "{\"url\":\"https://x.test/pricing\",",
            "{\"url\":\"/first\",\"url\":\"/last\",",
        );
        let (wire, _) = Wire::parse(repeated.as_bytes(), &types()).expect("serde reads it");
        assert_eq!(wire_urls(&wire).expect("plain")[0], "/last");
    }
}
