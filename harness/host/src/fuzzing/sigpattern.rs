//! Signature patterns: which findings end a campaign or a `bench find` run.
//!
//! A pattern is a finding signature with `*` standing for any run of characters; a pattern
//! without `*` is a prefix (`zone:` matches every zone finding, `kernel:KASAN:use-after-free`
//! the planted race's report), so `zone:*:large` is "a zone finding for a large folio".
//! The known-findings file ([`super::known`]) matches its patterns the same way, against the
//! whole signature. Hand-written rather than a glob crate: signatures are flat
//! `:`-separated words with no path, class or escape semantics, and the prefix rule is ours.

/// A signature pattern (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignaturePattern(String);

impl SignaturePattern {
    pub fn new(pattern: impl Into<String>) -> Self {
        SignaturePattern(pattern.into())
    }

    /// The pattern every finding matches.
    pub fn any() -> Self {
        SignaturePattern(String::new())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn matches(&self, signature: &str) -> bool {
        if self.0.contains('*') {
            glob_matches(&self.0, signature)
        } else {
            signature.starts_with(self.0.as_str())
        }
    }
}

/// `*` matches any run of characters (none included); everything else matches itself: the
/// whole signature, as the known-findings file ([`super::known`]) matches it.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &text[first.len()..];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

impl std::fmt::Display for SignaturePattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.contains('*') {
            f.write_str(&self.0)
        } else {
            write!(f, "{}*", self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SignaturePattern as P;

    #[test]
    fn a_pattern_without_a_star_is_a_prefix() {
        assert!(P::new("zone:").matches("zone:memfd:touch:Normal"));
        assert!(!P::new("zone:").matches("kernel:KASAN:use-after-free"));
        assert!(P::any().matches("leak:shmem"));
        assert_eq!(P::new("zone:").to_string(), "zone:*");
    }

    #[test]
    fn stars_match_any_run_and_the_end_is_anchored() {
        let large = P::new("zone:*:large");
        assert!(large.matches("zone:memfd:touch:Normal:large"));
        assert!(!large.matches("zone:memfd:touch:Normal"));
        assert!(!large.matches("zone:memfd:touch:Normal:large:x"));
        assert!(!large.matches("kernel:zone:x:large"));
        assert!(P::new("zone:*:touch:*").matches("zone:gem:touch:Normal"));
        assert!(!P::new("zone:*:touch:*").matches("zone:gem:check:Normal"));
        // The middle part and the end must not overlap.
        assert!(!P::new("a*ab*b").matches("aab"));
        assert!(P::new("a*ab*b").matches("aabb"));
    }
}
