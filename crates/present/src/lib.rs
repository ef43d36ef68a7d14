//! How avi-autoscaler's programs show things to people, shared by the operator, the Avi
//! simulator and the demo.
//!
//! It has no dependencies, so that the simulator (which stands alone) and the operator can both
//! use it without either depending on the other.
#![warn(missing_docs)]

/// An error and its causes on one line: `a: b: c`.
///
/// A cause whose text the line already ends with is not repeated, so an error that prints its
/// source itself is not shown twice.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut line = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !line.ends_with(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = c.source();
    }
    line
}

/// The corners of a step function through `points` (sorted by x): each value holds until the
/// next point's x, the last one until `end`. Drawn as a line, it shows a value that holds
/// between samples, as a replica count or a polled reading does.
pub fn steps(points: impl IntoIterator<Item = (f64, f64)>, end: f64) -> Vec<(f64, f64)> {
    let points: Vec<(f64, f64)> = points.into_iter().collect();
    let mut out = Vec::with_capacity(points.len() * 2);
    for (i, &(x, y)) in points.iter().enumerate() {
        let next = points.get(i + 1).map_or(end, |p| p.0);
        out.push((x, y));
        out.push((next, y));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Layer {
        text: &'static str,
        source: Option<Box<Layer>>,
    }

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.text)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.source
                .as_deref()
                .map(|s| s as &(dyn std::error::Error + 'static))
        }
    }

    fn layers(texts: &[&'static str]) -> Layer {
        texts
            .iter()
            .rev()
            .fold(None, |source, text| {
                Some(Layer {
                    text,
                    source: source.map(Box::new),
                })
            })
            .expect("at least one layer")
    }

    #[test]
    fn an_error_chain_is_one_line_of_every_cause() {
        assert_eq!(error_chain(&layers(&["a"])), "a");
        assert_eq!(
            error_chain(&layers(&["reading Secret ns/avi", "connection refused"])),
            "reading Secret ns/avi: connection refused"
        );
        assert_eq!(error_chain(&layers(&["a", "b", "c"])), "a: b: c");
    }

    #[test]
    fn a_cause_already_printed_is_not_repeated() {
        assert_eq!(
            error_chain(&layers(&["bind: address in use", "address in use"])),
            "bind: address in use"
        );
    }

    #[test]
    fn steps_hold_each_value_until_the_next_point() {
        assert_eq!(
            steps([(0.0, 1.0), (10.0, 3.0), (25.0, 2.0)], 30.0),
            vec![
                (0.0, 1.0),
                (10.0, 1.0),
                (10.0, 3.0),
                (25.0, 3.0),
                (25.0, 2.0),
                (30.0, 2.0)
            ]
        );
        assert_eq!(steps([], 30.0), vec![]);
    }
}
