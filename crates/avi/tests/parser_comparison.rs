//! The correctness half of the parser decision (the speed half is `benches/parser.rs`): the
//! same inputs through this crate's parser and through `prometheus-parse`, the most used
//! Prometheus text parser on crates.io. Each case pins down a difference that matters for Avi's
//! output; if a new `prometheus-parse` release fixes one, this test says so.

use std::borrow::Cow;

use avi::prometheus::{Line, parse};
use prometheus_parse::Scrape;

fn theirs(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("prometheus-parse reads strings")
}

fn ours(text: &str) -> Vec<avi::prometheus::Sample<'_>> {
    parse(text)
        .filter_map(|l| match l.expect("valid") {
            Line::Sample(s) => Some(s),
            _ => None,
        })
        .collect()
}

fn ours_fails(text: &str) -> bool {
    parse(text).any(|l| l.is_err())
}

const AVI_LINE: &str = "avi_l4_server_avg_open_conns{uuid=\"pool-a\", type=\"pool\", tenant=\"admin\", server=\"10.0.0.1:80\", name=\"web\"} 41.0";

#[test]
fn avis_comma_space_separator() {
    // Avi separates labels with ", ". prometheus-parse keeps the space in the label name, so
    // looking up `name` or `server` finds nothing.
    let scrape = theirs(AVI_LINE);
    assert_eq!(scrape.samples[0].labels.get("name"), None);
    assert_eq!(scrape.samples[0].labels.get(" name"), Some("web"));
    assert_eq!(
        ours(AVI_LINE)[0].labels.get("name"),
        Some(Cow::Borrowed("web"))
    );
}

#[test]
fn a_line_cut_by_a_broken_connection() {
    // prometheus-parse drops a line it cannot read without saying so; a cut answer then looks
    // like a pool with fewer members (a lower Sum). Ours reports the line.
    let cut = &AVI_LINE[..AVI_LINE.len() - 30];
    let text = format!("{AVI_LINE}\n{cut}\n");
    assert_eq!(theirs(&text).samples.len(), 1);
    assert!(ours_fails(&text));
}

#[test]
fn malformed_values_and_trailing_junk() {
    assert!(theirs("m{a=\"1\"} four").samples.is_empty());
    assert!(ours_fails("m{a=\"1\"} four"));
    assert_eq!(theirs("m{a=\"1\"} 1 1 junk").samples.len(), 1);
    assert!(ours_fails("m{a=\"1\"} 1 1 junk"));
}

#[test]
fn escaped_label_values() {
    let text = r#"m{name="a \"q\" \\ b"} 2"#;
    // prometheus-parse leaves the escapes in, so an escaped name never matches.
    assert_eq!(
        theirs(text).samples[0].labels.get("name"),
        Some(r#"a \"q\" \\ b"#)
    );
    assert_eq!(
        ours(text)[0].labels.get("name").as_deref(),
        Some(r#"a "q" \ b"#)
    );
    // An escape the format does not define is an error for us, kept verbatim by them.
    assert!(ours_fails(r#"m{a="\q"} 1"#));
}

#[test]
fn empty_label_sets_and_duplicate_labels() {
    assert!(theirs("m{} 3").samples.is_empty());
    assert_eq!(ours("m{} 3")[0].value, 3.0);
    assert_eq!(theirs("m{a=\"1\",a=\"2\"} 1").samples.len(), 1);
    assert!(ours_fails("m{a=\"1\",a=\"2\"} 1"));
}

#[test]
fn both_read_special_values_and_exponents() {
    for (text, v) in [
        ("m +Inf", f64::INFINITY),
        ("m -Inf", f64::NEG_INFINITY),
        ("m 1e3", 1000.0),
    ] {
        assert_eq!(ours(text)[0].value, v);
        match theirs(text).samples[0].value {
            prometheus_parse::Value::Untyped(x) => assert_eq!(x, v),
            ref other => panic!("{other:?}"),
        }
    }
    assert!(ours("m NaN")[0].value.is_nan());
}
