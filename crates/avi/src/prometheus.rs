//! A parser for the Prometheus text exposition format (version 0.0.4), as Avi serves it.
//!
//! It parses line by line and borrows from the input: a sample's name and label text are slices
//! of the answer, label values are unescaped only when asked for, and nothing is allocated per
//! line unless a sample has more than [`INLINE_LABELS`] labels. It accepts everything the
//! format allows and Avi is known to send: `# HELP`, `# TYPE` and other comment lines, blank
//! lines, CRLF line ends, `, ` or `,` between labels and a trailing comma, escaped label values
//! (`\\`, `\"`, `\n`), `NaN`, `+Inf`/`-Inf`, exponents, an optional integer timestamp, and
//! families that are not contiguous. Duplicate lines are reported as they come; what to do with
//! them is the caller's choice. Any other input is an error naming the line and what is wrong;
//! the parser never panics on input (a fuzz target under `fuzz/` checks that).

use std::{borrow::Cow, collections::HashSet, fmt};

/// Samples with up to this many labels are checked for duplicate label names without
/// allocating (Avi sends at most five: `uuid`, `type`, `tenant`, `server`, `name`).
pub const INLINE_LABELS: usize = 16;

/// The most labels one sample may have; more is an error ([`ParseError::is_over_limit`]).
/// Avi sends five, so this leaves room for any version's additions and none for an answer
/// built to make the parser work.
pub const MAX_LABELS: usize = 64;

/// One meaningful line of the exposition.
#[derive(Clone, Debug, PartialEq)]
pub enum Line<'a> {
    /// A sample: `name{labels} value [timestamp]`.
    Sample(Sample<'a>),
    /// `# HELP name text` (the text still escaped, as sent).
    Help {
        /// The metric family.
        name: &'a str,
        /// The help text.
        text: &'a str,
    },
    /// `# TYPE name type`.
    Type {
        /// The metric family.
        name: &'a str,
        /// `counter`, `gauge`, `histogram`, `summary` or `untyped`.
        kind: &'a str,
    },
    /// Any other comment, without the leading `#` and blanks (Avi's first line,
    /// `Successfully gathered N metrics for pool`, is one).
    Comment(&'a str),
}

/// One sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample<'a> {
    /// The metric name, for example `avi_l4_server_avg_open_conns`.
    pub name: &'a str,
    /// The labels, as validated text between the braces.
    pub labels: Labels<'a>,
    /// The value; may be NaN or infinite.
    pub value: f64,
    /// The optional timestamp, in milliseconds since the Unix epoch (Avi sends none).
    pub timestamp: Option<i64>,
}

/// The labels of a sample: the validated text between `{` and `}`, read on demand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Labels<'a> {
    raw: &'a str,
}

impl<'a> Labels<'a> {
    /// The value of label `name`, unescaped, if the sample has it.
    pub fn get(&self, name: &str) -> Option<Cow<'a, str>> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The labels in the order they were sent, values unescaped.
    pub fn iter(&self) -> LabelIter<'a> {
        LabelIter {
            rest: self.raw.as_bytes(),
            src: self.raw,
            pos: 0,
        }
    }

    /// Whether the sample has no labels.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

/// Iterator over validated labels (see [`Labels::iter`]).
#[derive(Clone, Debug)]
pub struct LabelIter<'a> {
    src: &'a str,
    rest: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for LabelIter<'a> {
    type Item = (&'a str, Cow<'a, str>);

    fn next(&mut self) -> Option<Self::Item> {
        // The text was validated by the parser, so this scan only finds boundaries; it still
        // returns None rather than panicking if it meets something unexpected.
        let b = self.rest;
        let mut i = self.pos;
        while i < b.len() && matches!(b[i], b' ' | b'\t' | b',') {
            i += 1;
        }
        if i >= b.len() {
            self.pos = i;
            return None;
        }
        let name_start = i;
        while i < b.len() && is_label_char(b[i]) {
            i += 1;
        }
        let name = self.src.get(name_start..i)?;
        while i < b.len() && b[i] != b'"' {
            i += 1;
        }
        i += 1;
        let value_start = i;
        let mut escaped = false;
        while i < b.len() && b[i] != b'"' {
            if b[i] == b'\\' {
                escaped = true;
                i += 1;
            }
            i += 1;
        }
        let raw = self.src.get(value_start..i.min(b.len()))?;
        self.pos = i + 1;
        let value = if escaped {
            Cow::Owned(unescape(raw))
        } else {
            Cow::Borrowed(raw)
        };
        Some((name, value))
    }
}

fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// What is wrong with an exposition, and on which line (1-based).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    line: usize,
    message: &'static str,
    over_limit: bool,
}

impl ParseError {
    /// The 1-based line number.
    pub fn line(&self) -> usize {
        self.line
    }

    /// What is wrong.
    pub fn message(&self) -> &'static str {
        self.message
    }

    /// Whether the line is well-formed but over a limit (more than [`MAX_LABELS`] labels).
    pub fn is_over_limit(&self) -> bool {
        self.over_limit
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Parses `text` lazily: an iterator over its meaningful lines (blank lines are skipped).
pub fn parse(text: &str) -> Lines<'_> {
    Lines {
        rest: text,
        line: 0,
    }
}

/// Iterator over the lines of an exposition (see [`parse`]). After an error it goes on with
/// the next line, so a caller may skip bad lines or stop at the first.
#[derive(Clone, Debug)]
pub struct Lines<'a> {
    rest: &'a str,
    line: usize,
}

impl<'a> Iterator for Lines<'a> {
    type Item = Result<Line<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let (raw, rest) = match self.rest.find('\n') {
                Some(i) => (&self.rest[..i], &self.rest[i + 1..]),
                None => (self.rest, ""),
            };
            self.rest = rest;
            self.line += 1;
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            let line = line.trim_start_matches([' ', '\t']);
            if line.bytes().all(|b| b == b' ' || b == b'\t') {
                continue;
            }
            let parsed = if let Some(comment) = line.strip_prefix('#') {
                parse_comment(comment)
            } else {
                parse_sample(line).map(Line::Sample)
            };
            return Some(parsed.map_err(|message| ParseError {
                line: self.line,
                message,
                over_limit: message == TOO_MANY_LABELS,
            }));
        }
    }
}

fn parse_comment(c: &str) -> Result<Line<'_>, &'static str> {
    let c = c.trim_start_matches([' ', '\t']);
    let keyword = |k: &str| {
        c.strip_prefix(k)
            .filter(|r| r.is_empty() || r.starts_with([' ', '\t']))
    };
    if let Some(rest) = keyword("HELP") {
        let rest = rest.trim_start_matches([' ', '\t']);
        let (name, text) = split_word(rest);
        if !is_metric_name(name) {
            return Err("HELP line without a valid metric name");
        }
        return Ok(Line::Help {
            name,
            text: text.trim_start_matches([' ', '\t']),
        });
    }
    if let Some(rest) = keyword("TYPE") {
        let rest = rest.trim_start_matches([' ', '\t']);
        let (name, kind) = split_word(rest);
        if !is_metric_name(name) {
            return Err("TYPE line without a valid metric name");
        }
        let kind = kind.trim_matches([' ', '\t']);
        if !matches!(
            kind,
            "counter" | "gauge" | "histogram" | "summary" | "untyped"
        ) {
            return Err("TYPE line with an unknown type");
        }
        return Ok(Line::Type { name, kind });
    }
    Ok(Line::Comment(c.trim_end_matches([' ', '\t'])))
}

fn split_word(s: &str) -> (&str, &str) {
    match s.find([' ', '\t']) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

fn is_metric_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty() && is_name_start(b[0]) && b.iter().all(|&c| is_name_char(c))
}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':'
}

fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b':'
}

fn is_label_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn skip_blanks(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    i
}

fn parse_sample(line: &str) -> Result<Sample<'_>, &'static str> {
    let b = line.as_bytes();
    if !is_name_start(b[0]) {
        return Err("expected a metric name");
    }
    let mut i = 1;
    while i < b.len() && is_name_char(b[i]) {
        i += 1;
    }
    let name = &line[..i];
    let mut labels = Labels::default();
    let after_name = i;
    i = skip_blanks(b, i);
    if i < b.len() && b[i] == b'{' {
        let start = i + 1;
        let end = scan_labels(b, start)?;
        labels = Labels {
            raw: &line[start..end],
        };
        i = skip_blanks(b, end + 1);
    } else if i == after_name && i < b.len() {
        return Err("invalid character in metric name");
    }
    if i == b.len() {
        return Err("missing value");
    }
    let value_start = i;
    while i < b.len() && b[i] != b' ' && b[i] != b'\t' {
        i += 1;
    }
    let value = parse_value(&line[value_start..i])?;
    i = skip_blanks(b, i);
    let mut timestamp = None;
    if i < b.len() {
        let ts_start = i;
        while i < b.len() && b[i] != b' ' && b[i] != b'\t' {
            i += 1;
        }
        timestamp = Some(
            line[ts_start..i]
                .parse::<i64>()
                .map_err(|_| "timestamp is not an integer")?,
        );
        i = skip_blanks(b, i);
        if i < b.len() {
            return Err("unexpected text after the timestamp");
        }
    }
    Ok(Sample {
        name,
        labels,
        value,
        timestamp,
    })
}

const TOO_MANY_LABELS: &str = "too many labels";

/// Validates the labels starting at `i` (just after `{`) and returns the index of the closing
/// `}`. Duplicate names are found by a scan of the first [`INLINE_LABELS`] names, then by a
/// hash set, so a line costs time linear in its length.
fn scan_labels(b: &[u8], mut i: usize) -> Result<usize, &'static str> {
    let mut inline: [(usize, usize); INLINE_LABELS] = [(0, 0); INLINE_LABELS];
    let mut spilled: HashSet<&[u8]> = HashSet::new();
    let mut count = 0usize;
    loop {
        i = skip_blanks(b, i);
        if i >= b.len() {
            return Err("unterminated label set");
        }
        if b[i] == b'}' {
            return Ok(i);
        }
        if !(b[i].is_ascii_alphabetic() || b[i] == b'_') {
            return Err("expected a label name");
        }
        let name_start = i;
        while i < b.len() && is_label_char(b[i]) {
            i += 1;
        }
        if count == MAX_LABELS {
            return Err(TOO_MANY_LABELS);
        }
        let name = (name_start, i);
        let seen = |&(s, e): &(usize, usize)| b[s..e] == b[name.0..name.1];
        if count < INLINE_LABELS {
            if inline[..count].iter().any(seen) {
                return Err("duplicate label name");
            }
            inline[count] = name;
        } else {
            if count == INLINE_LABELS {
                spilled.extend(inline.iter().map(|&(s, e)| &b[s..e]));
            }
            if !spilled.insert(&b[name.0..name.1]) {
                return Err("duplicate label name");
            }
        }
        count += 1;
        i = skip_blanks(b, i);
        if i >= b.len() || b[i] != b'=' {
            return Err("expected = after the label name");
        }
        i = skip_blanks(b, i + 1);
        if i >= b.len() || b[i] != b'"' {
            return Err("expected a quoted label value");
        }
        i += 1;
        loop {
            match b.get(i) {
                None => return Err("unterminated label value"),
                Some(b'"') => break,
                Some(b'\\') => match b.get(i + 1) {
                    Some(b'\\' | b'"' | b'n') => i += 2,
                    _ => return Err("invalid escape in a label value (only \\\\, \\\" and \\n)"),
                },
                Some(_) => i += 1,
            }
        }
        i = skip_blanks(b, i + 1);
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => return Ok(i),
            None => return Err("unterminated label set"),
            Some(_) => return Err("expected , or } after a label value"),
        }
    }
}

fn parse_value(s: &str) -> Result<f64, &'static str> {
    // Rust's float syntax matches Go's strconv.ParseFloat, which defines the format, for
    // decimals, exponents and the special values (NaN, +Inf, -Inf, any case); only Go's hex
    // floats are refused, and no exposition writer produces them.
    let v: f64 = s.parse().map_err(|_| "value is not a number")?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(text: &str) -> Vec<Sample<'_>> {
        parse(text)
            .filter_map(|l| match l.expect("valid exposition") {
                Line::Sample(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    fn first_error(text: &str) -> ParseError {
        parse(text)
            .find_map(Result::err)
            .expect("an error in the exposition")
    }

    #[test]
    fn avi_line_with_comma_space_separators() {
        let text = "avi_l4_server_avg_open_conns{uuid=\"pool-1\", type=\"pool\", tenant=\"admin\", server=\"10.0.0.1:80\", name=\"web\"} 41.0\n";
        let s = &samples(text)[0];
        assert_eq!(s.name, "avi_l4_server_avg_open_conns");
        assert_eq!(s.value, 41.0);
        assert_eq!(s.timestamp, None);
        let labels: Vec<_> = s.labels.iter().collect();
        assert_eq!(
            labels,
            vec![
                ("uuid", Cow::Borrowed("pool-1")),
                ("type", Cow::Borrowed("pool")),
                ("tenant", Cow::Borrowed("admin")),
                ("server", Cow::Borrowed("10.0.0.1:80")),
                ("name", Cow::Borrowed("web")),
            ]
        );
        assert_eq!(s.labels.get("server").as_deref(), Some("10.0.0.1:80"));
        assert_eq!(s.labels.get("missing"), None);
    }

    #[test]
    fn escapes_are_undone_on_read() {
        let s = &samples(r#"m{a="x\"y\\z\nw",b="plain"} 1"#)[0];
        assert_eq!(s.labels.get("a").as_deref(), Some("x\"y\\z\nw"));
        assert_eq!(s.labels.get("b").as_deref(), Some("plain"));
    }

    #[test]
    fn special_values_exponents_and_timestamps() {
        let text = "a NaN\nb +Inf\nc -Inf\nd 1.5e3\ne -2E-2 1700000000000\nf 7 -5\n";
        let s = samples(text);
        assert!(s[0].value.is_nan());
        assert_eq!(s[1].value, f64::INFINITY);
        assert_eq!(s[2].value, f64::NEG_INFINITY);
        assert_eq!(s[3].value, 1500.0);
        assert_eq!(s[4].value, -0.02);
        assert_eq!(s[4].timestamp, Some(1_700_000_000_000));
        assert_eq!(s[5].timestamp, Some(-5));
    }

    #[test]
    fn comments_help_type_blank_lines_and_crlf() {
        let text = "# Successfully gathered 2 metrics for pool\r\n\r\n# HELP m Some help.\r\n# TYPE m gauge\r\n   \r\nm{a=\"1\",} 1\r\nm{} 2\r\n";
        let lines: Vec<_> = parse(text).map(Result::unwrap).collect();
        assert_eq!(
            lines[0],
            Line::Comment("Successfully gathered 2 metrics for pool")
        );
        assert_eq!(
            lines[1],
            Line::Help {
                name: "m",
                text: "Some help."
            }
        );
        assert_eq!(
            lines[2],
            Line::Type {
                name: "m",
                kind: "gauge"
            }
        );
        assert_eq!(lines.len(), 5);
        match &lines[4] {
            Line::Sample(s) => assert!(s.labels.is_empty()),
            other => panic!("expected a sample, got {other:?}"),
        }
    }

    #[test]
    fn errors_name_the_line_and_problem() {
        let cases = [
            (
                "ok 1\nm{a=\"1\" 2\n",
                2,
                "expected , or } after a label value",
            ),
            ("m{a=\"1\"", 1, "unterminated label set"),
            ("m{a=\"1} 2", 1, "unterminated label value"),
            ("m 1 2 3", 1, "unexpected text after the timestamp"),
            ("m abc", 1, "value is not a number"),
            ("m", 1, "missing value"),
            ("m{a=\"1\",a=\"2\"} 1", 1, "duplicate label name"),
            (
                "m{a=\"\\x\"} 1",
                1,
                "invalid escape in a label value (only \\\\, \\\" and \\n)",
            ),
            ("m{1a=\"x\"} 1", 1, "expected a label name"),
            ("m-x 1", 1, "invalid character in metric name"),
            ("9m 1", 1, "expected a metric name"),
            ("m 1 1.5", 1, "timestamp is not an integer"),
            ("# TYPE m sometimes", 1, "TYPE line with an unknown type"),
            ("# HELP", 1, "HELP line without a valid metric name"),
            ("m{a=1} 2", 1, "expected a quoted label value"),
        ];
        for (text, line, message) in cases {
            let e = first_error(text);
            assert_eq!((e.line(), e.message()), (line, message), "input {text:?}");
        }
    }

    #[test]
    fn goes_on_after_a_bad_line() {
        let results: Vec<_> = parse("bad line here\ngood 1\n").collect();
        assert!(results[0].is_err());
        assert!(matches!(
            results[1],
            Ok(Line::Sample(Sample { value: 1.0, .. }))
        ));
    }

    #[test]
    fn many_labels_spill_without_losing_duplicate_detection() {
        let mut labels: Vec<String> = (0..40).map(|i| format!("l{i}=\"{i}\"")).collect();
        let line = format!("m{{{}}} 1", labels.join(","));
        assert_eq!(samples(&line)[0].labels.iter().count(), 40);
        labels.push("l3=\"again\"".into());
        let line = format!("m{{{}}} 1", labels.join(","));
        assert_eq!(first_error(&line).message(), "duplicate label name");
        assert!(!first_error(&line).is_over_limit());
    }

    #[test]
    fn more_labels_than_the_limit_are_refused_as_over_the_limit() {
        let labels = |n: usize| {
            (0..n)
                .map(|i| format!("l{i}=\"{i}\""))
                .collect::<Vec<_>>()
                .join(",")
        };
        assert_eq!(
            samples(&format!("m{{{}}} 1", labels(MAX_LABELS)))[0]
                .labels
                .iter()
                .count(),
            MAX_LABELS
        );
        let e = first_error(&format!("m{{{}}} 1", labels(MAX_LABELS + 1)));
        assert!(e.is_over_limit(), "{e}");
    }
}
