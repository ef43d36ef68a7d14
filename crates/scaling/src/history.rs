//! The recommendation history behind the stabilization windows, and the scale-event history
//! behind the rate policies, as `status.recommendations` and `status.scaleEvents` store them.
//!
//! # Recommendations: one entry per distinct value
//!
//! The HorizontalPodAutoscaler keeps an in-memory list with one `(replicas, time)` entry per sync
//! (`horizontal.go`, `stabilizeRecommendation` / `stabilizeRecommendationWithBehaviors`, which
//! overwrite an entry outside every window or append one) and asks two questions of it: the
//! highest and the lowest recommendation made within a window. Written to status as it is, that
//! list would change on every poll, and every poll would rewrite the object.
//!
//! Only two facts per value matter for those questions: whether it is the value recommended now,
//! and, if not, the last moment it was still recommended. So [`Recommendations`] keeps
//!
//! * the **current** recommendation with the time it was first made, and
//! * for every other value recommended within the longest window, the time it was last
//!   **superseded**, oldest first.
//!
//! Re-recommending the current value changes nothing, so a poll with unchanged inputs leaves the
//! status as it was. The list holds at most one entry per distinct value (in practice a handful)
//! and is pruned by age.
//!
//! A value counts as recommended until the poll that replaced it. The HorizontalPodAutoscaler's
//! list remembers instead the last poll that *made* it, which is one polling interval earlier
//! (or earlier still when polls in between failed); knowing that time would mean writing it on
//! every poll. So a superseded value stays inside a window for at most one polling interval
//! longer than in the HorizontalPodAutoscaler (longer after an outage), which can only delay a
//! step, never cause one. The tests below check both: exact equality with a per-poll list that
//! counts each entry until the next one, and "never less conservative" against the literal
//! HorizontalPodAutoscaler list.
//!
//! After a restart the current entry read back from status is treated as recommended until the
//! first new poll: like the HorizontalPodAutoscaler re-seeding its history with the current size,
//! it holds a scale-down for one window rather than risk an early one. An object without any
//! history is seeded with its current replica count, exactly as `recordInitialRecommendation`
//! does.
//!
//! # Scale events
//!
//! Scale events are written only when the target is scaled, so they are stored as they are
//! (`{time, from, to}`) and pruned once they are older than the longest policy period of either
//! direction (`markScaleEventsOutdated` in `horizontal.go`).

use std::time::Duration;

use api::{Recommendation, ScaleDirection, ScaleEvent};

use crate::clock::{Seconds, secs, time_at};

/// One recommended replica count and the time that matters for it (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    replicas: i32,
    at: Seconds,
}

/// The recommendation history (see the module docs for the encoding).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Recommendations {
    /// Superseded values: at most one per value, each with the time it was last superseded,
    /// oldest first.
    past: Vec<Entry>,
    /// The value recommended now and the time it was first recommended; `None` only for an
    /// object that has never been seeded.
    current: Option<Entry>,
}

impl Recommendations {
    /// Reads the history back from status: the last entry is the current recommendation, every
    /// earlier one a superseded value. Hand-edited or duplicated entries are tolerated: per value
    /// only the latest time is kept.
    pub(crate) fn from_status(entries: &[Recommendation]) -> Self {
        let Some((last, earlier)) = entries.split_last() else {
            return Self::default();
        };
        let current = Entry {
            replicas: last.replicas,
            at: secs(&last.time),
        };
        let mut past: Vec<Entry> = Vec::with_capacity(earlier.len());
        for e in earlier {
            if e.replicas == current.replicas {
                continue;
            }
            let entry = Entry {
                replicas: e.replicas,
                at: secs(&e.time),
            };
            match past.iter_mut().find(|p| p.replicas == entry.replicas) {
                Some(p) => p.at = p.at.max(entry.at),
                None => past.push(entry),
            }
        }
        past.sort_by_key(|e| e.at);
        Self {
            past,
            current: Some(current),
        }
    }

    /// Writes the history in the form [`Recommendations::from_status`] reads.
    pub(crate) fn to_status(&self) -> Vec<Recommendation> {
        self.past
            .iter()
            .chain(self.current.iter())
            .map(|e| Recommendation {
                time: time_at(e.at),
                replicas: e.replicas,
            })
            .collect()
    }

    /// Seeds an empty history with the current replica count, as the HorizontalPodAutoscaler's
    /// `recordInitialRecommendation` does the first time it sees an object.
    pub(crate) fn seed(&mut self, replicas: i32, now: Seconds) {
        if self.current.is_none() {
            self.current = Some(Entry { replicas, at: now });
        }
    }

    /// The highest recommendation still inside `window` at `now`, if any.
    pub(crate) fn max_within(&self, now: Seconds, window: Duration, edge: Edge) -> Option<i32> {
        self.within(now, window, edge).max()
    }

    /// The lowest recommendation still inside `window` at `now`, if any.
    pub(crate) fn min_within(&self, now: Seconds, window: Duration, edge: Edge) -> Option<i32> {
        self.within(now, window, edge).min()
    }

    /// The recommendations inside `window` at `now`. A superseded value is inside while the
    /// time it was superseded is inside the window; the current value counts as recommended
    /// until `now`.
    fn within(&self, now: Seconds, window: Duration, edge: Edge) -> impl Iterator<Item = i32> + '_ {
        let cutoff = now.saturating_sub(window_secs(window));
        let inside = move |at: Seconds| match edge {
            Edge::Inclusive => at >= cutoff,
            Edge::Exclusive => at > cutoff,
        };
        self.past
            .iter()
            .filter(move |e| inside(e.at))
            .chain(self.current.iter().filter(move |_| inside(now)))
            .map(|e| e.replicas)
    }

    /// Records this poll's recommendation (made at `now`).
    pub(crate) fn record(&mut self, replicas: i32, now: Seconds) {
        match self.current {
            Some(c) if c.replicas == replicas => {}
            Some(c) => {
                self.past
                    .retain(|e| e.replicas != c.replicas && e.replicas != replicas);
                self.past.push(Entry {
                    replicas: c.replicas,
                    at: now,
                });
                self.current = Some(Entry { replicas, at: now });
            }
            None => self.current = Some(Entry { replicas, at: now }),
        }
    }

    /// Drops superseded values that are outside a window of length `longest` at `now` (of
    /// either edge), and so outside every window from now on. The current value is never dropped.
    pub(crate) fn prune(&mut self, now: Seconds, longest: Duration) {
        let cutoff = now.saturating_sub(window_secs(longest));
        self.past.retain(|e| e.at >= cutoff);
    }

    /// How many entries status will hold.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.past.len() + usize::from(self.current.is_some())
    }
}

/// Whether a value superseded exactly at the start of a window still counts: the legacy path
/// keeps entries that are not `Before(cutoff)`, the behavior path those `After(cutoff)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Edge {
    /// `time >= now - window` (`stabilizeRecommendation`, no `behavior`).
    Inclusive,
    /// `time > now - window` (`stabilizeRecommendationWithBehaviors`).
    Exclusive,
}

/// The scale-event history behind the rate policies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ScaleEvents {
    events: Vec<ScaleEvent>,
}

impl ScaleEvents {
    /// Reads the events back from status.
    pub(crate) fn from_status(events: &[ScaleEvent]) -> Self {
        Self {
            events: events.to_vec(),
        }
    }

    /// The events as status stores them.
    pub(crate) fn to_status(&self) -> Vec<ScaleEvent> {
        self.events.clone()
    }

    /// Replicas added and removed by the events of the last `period` (an event counts while it
    /// is younger than the period: `getReplicasChangePerPeriod`, `timestamp.After(cutoff)`).
    pub(crate) fn changes_within(&self, now: Seconds, period: Duration) -> (i64, i64) {
        let cutoff = now.saturating_sub(window_secs(period));
        self.events
            .iter()
            .filter(|e| secs(&e.time) > cutoff)
            .fold((0, 0), |(added, removed), e| {
                let n = i64::from(e.magnitude());
                match e.direction() {
                    ScaleDirection::Up => (added + n, removed),
                    ScaleDirection::Down => (added, removed + n),
                }
            })
    }

    /// Records a scale from `from` to `to` replicas at `now`.
    pub(crate) fn record(&mut self, from: i32, to: i32, now: Seconds) {
        self.events.push(ScaleEvent {
            time: time_at(now),
            from,
            to,
        });
    }

    /// Drops events older than the longest policy period: no policy can count them any more.
    pub(crate) fn prune(&mut self, now: Seconds, longest: Duration) {
        let cutoff = now.saturating_sub(window_secs(longest));
        self.events.retain(|e| secs(&e.time) > cutoff);
    }
}

/// A window or period in whole seconds (they are configured in seconds).
fn window_secs(d: Duration) -> Seconds {
    Seconds::try_from(d.as_secs()).unwrap_or(Seconds::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn history(entries: &[(i32, Seconds)]) -> Recommendations {
        let status: Vec<Recommendation> = entries
            .iter()
            .map(|&(replicas, at)| Recommendation {
                time: time_at(at),
                replicas,
            })
            .collect();
        Recommendations::from_status(&status)
    }

    #[test]
    fn an_unchanged_recommendation_changes_nothing() {
        let mut h = Recommendations::default();
        h.seed(3, 1000);
        let before = h.to_status();
        for t in [1015, 1030, 1045, 5000] {
            h.record(3, t);
            assert_eq!(h.to_status(), before);
        }
    }

    #[test]
    fn a_changed_recommendation_supersedes_the_current_one() {
        let mut h = Recommendations::default();
        h.seed(1, 0);
        h.record(5, 300);
        h.record(2, 600);
        h.record(5, 615);
        assert_eq!(
            h.past,
            [
                Entry {
                    replicas: 1,
                    at: 300
                },
                Entry {
                    replicas: 2,
                    at: 615
                }
            ]
        );
        assert_eq!(
            h.current,
            Some(Entry {
                replicas: 5,
                at: 615
            })
        );
        // Round trip through status.
        assert_eq!(Recommendations::from_status(&h.to_status()), h);
    }

    #[test]
    fn window_edges_follow_the_hpa() {
        // 5 was superseded at t=1000; a 300 s window at t=1300 no longer holds it (After(cutoff)
        // is strict), at t=1299 it still does.
        let h = history(&[(5, 1000), (1, 1000)]);
        let w = Duration::from_secs(300);
        assert_eq!(h.max_within(1299, w, Edge::Exclusive), Some(5));
        assert_eq!(h.max_within(1300, w, Edge::Exclusive), Some(1));
        // The legacy path still counts it at exactly 300 s, and not a second later.
        assert_eq!(h.max_within(1300, w, Edge::Inclusive), Some(5));
        assert_eq!(h.max_within(1301, w, Edge::Inclusive), Some(1));
        // A zero window holds nothing from the past, not even the current entry.
        assert_eq!(h.max_within(1000, Duration::ZERO, Edge::Exclusive), None);
    }

    #[test]
    fn the_reference_examples_hold() {
        // autoscaling-semantics.md 2.4: history {4 @120s ago, 5 @60s ago}, down window 180 → 5.
        let now = 10_000;
        let h = history(&[(4, now - 120), (5, now - 60), (3, now - 60)]);
        assert_eq!(
            h.max_within(now, Duration::from_secs(180), Edge::Exclusive)
                .map(|m| m.max(3)),
            Some(5)
        );
        // Same history, up window 300, desired 7 → lowest 3 (the current entry counts too).
        assert_eq!(
            h.min_within(now, Duration::from_secs(300), Edge::Exclusive)
                .map(|m| m.min(7)),
            Some(3)
        );
    }

    #[test]
    fn from_status_tolerates_duplicates_and_disorder() {
        let h = history(&[(4, 50), (2, 10), (4, 30), (3, 60), (2, 70)]);
        assert_eq!(
            h.current,
            Some(Entry {
                replicas: 2,
                at: 70
            })
        );
        assert_eq!(
            h.past,
            [
                Entry {
                    replicas: 4,
                    at: 50
                },
                Entry {
                    replicas: 3,
                    at: 60
                }
            ]
        );
    }

    #[test]
    fn pruning_keeps_the_current_entry() {
        let mut h = history(&[(4, 50), (3, 60), (2, 70)]);
        h.prune(400, Duration::from_secs(300));
        assert_eq!(h.to_status().len(), 1);
        assert_eq!(
            h.current,
            Some(Entry {
                replicas: 2,
                at: 70
            })
        );
    }

    #[test]
    fn scale_events_count_inside_the_period_only() {
        let mut e = ScaleEvents::default();
        e.record(1, 5, 100); // +4
        e.record(5, 3, 110); // -2
        assert_eq!(e.changes_within(114, Duration::from_secs(15)), (4, 2));
        // At exactly periodSeconds the first event no longer counts (After(cutoff)).
        assert_eq!(e.changes_within(115, Duration::from_secs(15)), (0, 2));
        e.prune(125, Duration::from_secs(15));
        assert_eq!(e.to_status().len(), 0);
    }

    /// One poll of the property tests: its time, and the recommendation it makes.
    #[derive(Clone, Debug)]
    struct Poll {
        at: Seconds,
        replicas: i32,
    }

    fn polls() -> impl Strategy<Value = Vec<Poll>> {
        prop::collection::vec((1i64..400, 0i32..8), 1..60).prop_map(|steps| {
            let mut at = 1_000_000;
            steps
                .into_iter()
                .map(|(gap, replicas)| {
                    at += gap;
                    Poll { at, replicas }
                })
                .collect()
        })
    }

    /// The naive model: one entry per poll, each counted until the next poll replaced it (the
    /// last one until now).
    struct PerPoll(Vec<(i32, Seconds)>);

    impl PerPoll {
        fn within(&self, now: Seconds, window: Seconds, edge: Edge) -> Vec<i32> {
            let cutoff = now - window;
            self.0
                .iter()
                .enumerate()
                .filter(|&(i, _)| {
                    let until = self.0.get(i + 1).map_or(now, |next| next.1);
                    match edge {
                        Edge::Inclusive => until >= cutoff,
                        Edge::Exclusive => until > cutoff,
                    }
                })
                .map(|(_, &(r, _))| r)
                .collect()
        }
    }

    /// The HorizontalPodAutoscaler's own list: an entry counts while the poll that made it is
    /// inside the window (strictly for `behavior`, inclusively for the legacy path).
    fn hpa_within(list: &[(i32, Seconds)], now: Seconds, window: Seconds, edge: Edge) -> Vec<i32> {
        list.iter()
            .filter(|&&(_, t)| match edge {
                Edge::Inclusive => t >= now - window,
                Edge::Exclusive => t > now - window,
            })
            .map(|&(r, _)| r)
            .collect()
    }

    proptest! {
        /// The compact history answers every window question exactly like the per-poll list,
        /// after a round trip through status on every poll, and stays small.
        #[test]
        fn compact_history_equals_the_per_poll_list(
            seed in 0i32..8,
            polls in polls(),
            up in 0i64..700,
            down in 0i64..700,
            inclusive: bool,
        ) {
            let edge = if inclusive { Edge::Inclusive } else { Edge::Exclusive };
            let start = polls[0].at;
            let mut compact = Recommendations::default();
            let mut naive = PerPoll(Vec::new());
            compact.seed(seed, start);
            naive.0.push((seed, start));
            let longest = Duration::from_secs(up.max(down) as u64);
            for p in &polls {
                compact = Recommendations::from_status(&compact.to_status());
                compact.prune(p.at, longest);
                for w in [up, down] {
                    let d = Duration::from_secs(w as u64);
                    let expected = naive.within(p.at, w, edge);
                    prop_assert_eq!(compact.max_within(p.at, d, edge), expected.iter().copied().max());
                    prop_assert_eq!(compact.min_within(p.at, d, edge), expected.iter().copied().min());
                }
                compact.record(p.replicas, p.at);
                naive.0.push((p.replicas, p.at));
                let distinct: std::collections::BTreeSet<i32> =
                    naive.0.iter().map(|&(r, _)| r).collect();
                prop_assert!(compact.len() <= distinct.len());
            }
        }

        /// Against the HorizontalPodAutoscaler's literal list the compact history is never less
        /// conservative: its highest recommendation in a window is at least the HPA's, its lowest
        /// at most the HPA's.
        #[test]
        fn compact_history_is_never_less_conservative_than_the_hpa(
            seed in 0i32..8,
            polls in polls(),
            window in 0i64..700,
            inclusive: bool,
        ) {
            let edge = if inclusive { Edge::Inclusive } else { Edge::Exclusive };
            let start = polls[0].at;
            let mut compact = Recommendations::default();
            compact.seed(seed, start);
            let mut hpa = vec![(seed, start)];
            let d = Duration::from_secs(window as u64);
            for p in &polls {
                let theirs = hpa_within(&hpa, p.at, window, edge);
                let (max, min) = (compact.max_within(p.at, d, edge), compact.min_within(p.at, d, edge));
                if let Some(theirs_max) = theirs.iter().copied().max() {
                    prop_assert!(max.is_some_and(|m| m >= theirs_max));
                }
                if let Some(theirs_min) = theirs.iter().copied().min() {
                    prop_assert!(min.is_some_and(|m| m <= theirs_min));
                }
                compact.record(p.replicas, p.at);
                hpa.push((p.replicas, p.at));
            }
        }
    }
}
