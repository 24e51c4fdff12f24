//! URL globs as ``fnmatch.fnmatchcase`` matches them, for patterns without ``[``.

use smallvec::SmallVec;

/// ``fnmatch.fnmatchcase(text, pattern)`` for a pattern without ``[``: ``*`` is any
/// run of characters (newlines too), ``?`` any one character, the rest literal.
pub(crate) fn glob_match(pattern: &[char], text: &str) -> bool {
    let text: SmallVec<[char; 128]> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    let mut resume: Option<(usize, usize)> = None; // after the last '*': (pattern, text)
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || (pattern[p] != '*' && pattern[p] == text[t]))
        {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            resume = Some((p + 1, t));
            p += 1;
        } else if let Some((rp, rt)) = resume {
            p = rp;
            t = rt + 1;
            resume = Some((rp, rt + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(pattern: &str, text: &str) -> bool {
        glob_match(&pattern.chars().collect::<Vec<_>>(), text)
    }

    #[test]
    fn literal_patterns_match_only_themselves() {
        assert!(glob("/pricing", "/pricing"));
        assert!(!glob("/pricing", "/pricing/"));
        assert!(!glob("/pricing", "/Pricing")); // case matters (fnmatchcase)
        assert!(glob("", ""));
        assert!(!glob("", "x"));
    }

    #[test]
    fn star_is_any_run_and_question_mark_any_one_character() {
        assert!(glob("*/pricing*", "https://example.test/pricing?plan=team"));
        assert!(glob("/docs/*", "/docs/"));
        assert!(glob("/a*b*c", "/aXXbYYbZZc"));
        assert!(!glob("/a*b*c", "/aXXbYYbZZ"));
        assert!(glob("/v?/api", "/v2/api"));
        assert!(!glob("/v?/api", "/v10/api"));
        assert!(glob("**", ""));
    }

    #[test]
    fn star_crosses_newlines_and_question_mark_takes_one_character_not_byte() {
        assert!(glob("a*b", "a\nb"));
        assert!(glob("caf?", "café"));
        assert!(glob("?", "日"));
    }
}
