//! Every condition reason and Event reason has a section, with cause and fix, in
//! `docs/reasons.md`.

use std::collections::BTreeSet;

use api::{EventReason, Reason};

/// The `### Name` headings under the `## <section>` heading of the page.
fn headings_under(page: &str, section: &str) -> BTreeSet<String> {
    let mut inside = false;
    let mut found = BTreeSet::new();
    for line in page.lines() {
        if let Some(title) = line.strip_prefix("## ") {
            inside = title.trim() == section;
        } else if let Some(title) = line.strip_prefix("### ")
            && inside
        {
            found.insert(title.trim().to_owned());
        }
    }
    found
}

fn missing<'a>(all: impl Iterator<Item = &'a str>, documented: &BTreeSet<String>) -> Vec<&'a str> {
    all.filter(|name| !documented.contains(*name)).collect()
}

#[test]
fn every_reason_is_documented() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/reasons.md");
    let page = std::fs::read_to_string(path).expect("docs/reasons.md is readable");

    let conditions = headings_under(&page, "Condition reasons");
    let undocumented = missing(Reason::ALL.iter().map(|r| r.as_str()), &conditions);
    assert!(
        undocumented.is_empty(),
        "condition reasons without a `### Name` section under `## Condition reasons` in \
         docs/reasons.md: {undocumented:?}"
    );

    let events = headings_under(&page, "Event reasons");
    let undocumented = missing(EventReason::ALL.iter().map(|r| r.as_str()), &events);
    assert!(
        undocumented.is_empty(),
        "Event reasons without a `### Name` section under `## Event reasons` in \
         docs/reasons.md: {undocumented:?}"
    );
}

#[test]
fn no_section_documents_a_reason_that_does_not_exist() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/reasons.md");
    let page = std::fs::read_to_string(path).expect("docs/reasons.md is readable");
    let stale: Vec<String> = headings_under(&page, "Condition reasons")
        .into_iter()
        .filter(|h| Reason::parse(h).is_none())
        .chain(
            headings_under(&page, "Event reasons")
                .into_iter()
                .filter(|h| EventReason::parse(h).is_none()),
        )
        .collect();
    assert!(
        stale.is_empty(),
        "docs/reasons.md documents unknown reasons: {stale:?}"
    );
}
