//! Feeds arbitrary text to the Prometheus parser: it must never panic, and what it accepts
//! must read back consistently.
#![no_main]

use avi::prometheus::{Line, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for line in parse(text) {
        let Ok(Line::Sample(sample)) = line else {
            continue;
        };
        assert!(!sample.name.is_empty());
        let labels: Vec<_> = sample.labels.iter().collect();
        for (name, value) in &labels {
            assert!(!name.is_empty());
            // Label names are unique within a sample, so get() finds exactly this value.
            assert_eq!(sample.labels.get(name).as_deref(), Some(value.as_ref()));
        }
        assert_eq!(sample.labels.is_empty(), labels.is_empty());
    }
});
