//! Property test: any sample written in the text format (escaped labels, any float, optional
//! timestamp, either label separator, CRLF or LF) parses back to exactly what was written.

use avi::prometheus::{Line, parse};
use proptest::prelude::*;

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("finite", |v| v.is_finite()),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        (-1000i64..1000).prop_map(|v| v as f64 / 8.0),
    ]
}

fn render(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v:?}")
    }
}

proptest! {
    #[test]
    fn written_samples_parse_back(
        name in "[a-zA-Z_:][a-zA-Z0-9_:]{0,30}",
        labels in proptest::collection::btree_map("[a-zA-Z_][a-zA-Z0-9_]{0,10}", "\\PC{0,20}", 0..8),
        v in value(),
        ts in proptest::option::of(any::<i64>()),
        sep in prop_oneof![Just(","), Just(", ")],
        eol in prop_oneof![Just("\n"), Just("\r\n")],
    ) {
        let body: Vec<String> = labels.iter().map(|(k, x)| format!("{k}=\"{}\"", escape(x))).collect();
        let mut line = name.clone();
        if !body.is_empty() {
            line.push_str(&format!("{{{}}}", body.join(sep)));
        }
        line.push(' ');
        line.push_str(&render(v));
        if let Some(ts) = ts {
            line.push_str(&format!(" {ts}"));
        }
        let text = format!("# a comment\n\n{line}{eol}");
        let parsed: Vec<Line<'_>> = parse(&text).collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(parsed.len(), 2);
        let Line::Sample(s) = &parsed[1] else { panic!("not a sample: {:?}", parsed[1]) };
        prop_assert_eq!(s.name, name.as_str());
        prop_assert!(s.value == v || (v.is_nan() && s.value.is_nan()));
        prop_assert_eq!(s.timestamp, ts);
        let read: Vec<(String, String)> = s.labels.iter().map(|(k, x)| (k.to_owned(), x.into_owned())).collect();
        let wrote: Vec<(String, String)> = labels.into_iter().collect();
        prop_assert_eq!(read, wrote);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        for line in parse(&text) {
            let _ = line;
        }
    }
}
