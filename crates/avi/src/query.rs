//! Metric queries, samples, and reading one answer of the Prometheus endpoint.

use std::collections::{HashMap, HashSet};

use api::{Aggregation, EntityType, k8s::jiff::Timestamp};

use crate::{
    error::{Error, Kind},
    prometheus::{self, Line},
};

/// How an entity is named in a query.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntitySelector {
    /// By object name (for AKO pools, `<cluster>--<host><path>-<ns>-<ingress>`).
    Name(String),
    /// By object UUID, for example `pool-3b3e5b5c-…`.
    Uuid(String),
}

impl EntitySelector {
    pub(crate) fn kind(&self) -> SelectorKind {
        match self {
            EntitySelector::Name(_) => SelectorKind::Name,
            EntitySelector::Uuid(_) => SelectorKind::Uuid,
        }
    }

    pub(crate) fn value(&self) -> &str {
        match self {
            EntitySelector::Name(s) | EntitySelector::Uuid(s) => s,
        }
    }
}

/// Whether a batch names entities by name or by UUID (the endpoint's `entity_name` or
/// `entity_id`; one request uses one of them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum SelectorKind {
    Name,
    Uuid,
}

impl SelectorKind {
    pub(crate) fn query_param(self) -> &'static str {
        match self {
            SelectorKind::Name => "entity_name",
            SelectorKind::Uuid => "entity_id",
        }
    }

    fn label(self) -> &'static str {
        match self {
            SelectorKind::Name => "name",
            SelectorKind::Uuid => "uuid",
        }
    }
}

/// One metric of one entity to read.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MetricQuery {
    /// Pool, virtual service or service engine.
    pub entity_type: EntityType,
    /// The entity, by name or UUID.
    pub entity: EntitySelector,
    /// The Avi metric id, for example `l4_server.avg_open_conns`.
    pub metric_id: String,
    /// How a pool's member series combine; `None` means `Sum`. One-series entities ignore it.
    pub aggregation: Option<Aggregation>,
    /// Read Avi's 5-second realtime values instead of its 300-second averages.
    pub realtime: bool,
}

impl MetricQuery {
    /// The query for one resolved spec metric.
    pub fn from_metric(m: &api::ResolvedMetric) -> Self {
        let entity = match (&m.entity.name, &m.entity.uuid) {
            (Some(name), _) => EntitySelector::Name(name.clone()),
            (None, Some(uuid)) => EntitySelector::Uuid(uuid.clone()),
            // resolve() guarantees one of them; an empty name then fails as an unknown entity.
            (None, None) => EntitySelector::Name(String::new()),
        };
        MetricQuery {
            entity_type: m.entity.kind,
            entity,
            metric_id: m.metric_id.clone(),
            aggregation: m.aggregation,
            realtime: m.realtime,
        }
    }
}

/// A value read from the controller.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// The value after combining a pool's member series per the query's aggregation.
    pub value: f64,
    /// How many series it combines: the pool's member count, 1 for other entities.
    pub series: u32,
    /// When the controller answered. Avi's samples carry no time of their own: the value is
    /// the average over the current 300-second (or 5-second realtime) bucket, so the same
    /// value may be read several times.
    pub read_at: Timestamp,
}

/// The Prometheus name of an Avi metric id: `avi_` + the id with `.` replaced by `_`.
pub(crate) fn prometheus_name(metric_id: &str) -> String {
    let mut s = String::with_capacity(metric_id.len() + 4);
    s.push_str("avi_");
    s.extend(metric_id.chars().map(|c| if c == '.' { '_' } else { c }));
    s
}

/// The most lines (samples, comments, HELP and TYPE) one answer may have. A request names at
/// most 50 entities and a few metrics, so a real answer has some thousand lines; more is an
/// answer built to exhaust the parser.
pub(crate) const MAX_LINES: usize = 1_000_000;
/// The most distinct series (metric, entity, member) kept from one answer: 50 pools of a few
/// hundred members each, times a handful of metrics.
pub(crate) const MAX_SERIES: usize = 250_000;

#[derive(Clone, Debug)]
struct Member {
    server: Option<String>,
    value: f64,
    timestamp: Option<i64>,
}

/// The member series of one (metric, entity), in the order first seen, with an index by
/// member so that a duplicate is found in constant time.
#[derive(Debug, Default)]
struct Members {
    list: Vec<Member>,
    by_server: HashMap<Option<String>, usize>,
}

impl Members {
    /// Adds `member`; a duplicate series keeps the newest sample (by timestamp when there is
    /// one, else the later line), so it is never counted twice. Whether it was a new series.
    fn add(&mut self, member: Member) -> bool {
        match self.by_server.get(&member.server) {
            Some(&i) => {
                let old = &mut self.list[i];
                if old.timestamp <= member.timestamp {
                    *old = member;
                }
                false
            }
            None => {
                self.by_server
                    .insert(member.server.clone(), self.list.len());
                self.list.push(member);
                true
            }
        }
    }
}

/// One answer of `/api/analytics/prometheus-metrics/<type>`, indexed by metric and entity.
#[derive(Debug)]
pub(crate) struct Answer {
    /// Prometheus metric name → entity (name or UUID) → member series.
    values: HashMap<String, HashMap<String, Members>>,
    /// Every entity that has at least one sample.
    entities: HashSet<String>,
    /// When the answer arrived.
    pub read_at: Timestamp,
}

/// What an answer says about one (entity, metric).
#[derive(Debug)]
pub(crate) enum Lookup {
    /// The value, or why it cannot be used (NaN, infinite).
    Found(Result<Sample, Error>),
    /// The entity answered other metrics, and other entities answered this one.
    NoValueForEntity,
    /// The entity answered other metrics, but no entity answered this one.
    MetricAbsent,
    /// The entity is not in the answer at all.
    EntityAbsent,
}

impl Answer {
    /// Reads an answer. Fails (bad response) on a malformed line, an empty body, or fewer
    /// samples than the `# Successfully gathered N metrics` line announced (a cut answer);
    /// fails as too large on more than [`MAX_LINES`] lines, [`MAX_SERIES`] series or
    /// [`prometheus::MAX_LABELS`] labels on a line. Time and memory are linear in the text.
    pub(crate) fn parse(text: &str, by: SelectorKind, read_at: Timestamp) -> Result<Self, Error> {
        let bad = |detail: String| Error::new(Kind::BadResponse).with_detail(detail);
        let too_large = |detail: String| Error::new(Kind::TooLarge).with_detail(detail);
        if text.trim().is_empty() {
            return Err(bad("empty body".into()));
        }
        let mut announced = None;
        let mut count = 0usize;
        let mut series = 0usize;
        let mut values: HashMap<String, HashMap<String, Members>> = HashMap::new();
        let mut entities = HashSet::new();
        for (n, line) in prometheus::parse(text).enumerate() {
            if n == MAX_LINES {
                return Err(too_large(format!(
                    "the answer has more than {MAX_LINES} lines"
                )));
            }
            let line = line.map_err(|e| {
                if e.is_over_limit() {
                    too_large(format!("Prometheus text over a limit: {e}"))
                } else {
                    bad(format!("malformed Prometheus text: {e}"))
                }
            })?;
            let sample = match line {
                Line::Sample(s) => s,
                Line::Comment(c) => {
                    if announced.is_none() {
                        announced = announced_count(c);
                    }
                    continue;
                }
                Line::Help { .. } | Line::Type { .. } => continue,
            };
            count += 1;
            let Some(entity) = sample.labels.get(by.label()) else {
                continue;
            };
            let server = sample.labels.get("server").map(|s| s.into_owned());
            let members = values
                .entry(sample.name.to_owned())
                .or_default()
                .entry(entity.to_string())
                .or_default();
            if !entities.contains(entity.as_ref()) {
                entities.insert(entity.into_owned());
            }
            let member = Member {
                server,
                value: sample.value,
                timestamp: sample.timestamp,
            };
            if members.add(member) {
                series += 1;
                if series > MAX_SERIES {
                    return Err(too_large(format!(
                        "the answer has more than {MAX_SERIES} series"
                    )));
                }
            }
        }
        if let Some(n) = announced
            && count < n
        {
            return Err(bad(format!(
                "the answer announced {n} samples but holds {count}: it was cut short"
            )));
        }
        Ok(Answer {
            values,
            entities,
            read_at,
        })
    }

    /// Whether the answer holds no sample at all ("0 metrics").
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }

    /// Looks up one entity's metric and combines its series.
    pub(crate) fn lookup(
        &self,
        entity: &str,
        metric_id: &str,
        aggregation: Option<Aggregation>,
    ) -> Lookup {
        let name = prometheus_name(metric_id);
        let family = self.values.get(&name);
        match family.and_then(|f| f.get(entity)) {
            Some(members) => {
                Lookup::Found(aggregate_members(&members.list, aggregation, self.read_at))
            }
            None if !self.entities.contains(entity) => Lookup::EntityAbsent,
            None if family.is_some() => Lookup::NoValueForEntity,
            None => Lookup::MetricAbsent,
        }
    }
}

/// Reads N from `Successfully gathered N metrics for <type>`.
fn announced_count(comment: &str) -> Option<usize> {
    let rest = comment.strip_prefix("Successfully gathered ")?;
    let (n, rest) = rest.split_once(' ')?;
    rest.starts_with("metrics").then(|| n.parse().ok())?
}

/// One value from a pool's member series, as `aggregation` says (`Sum` when unset).
fn aggregate_members(
    members: &[Member],
    aggregation: Option<Aggregation>,
    read_at: Timestamp,
) -> Result<Sample, Error> {
    // One member without a usable value makes the whole value unusable: a pool total without
    // one member would read as a drop in load, and missing data must hold, never scale.
    if let Some(m) = members.iter().find(|m| !m.value.is_finite()) {
        let who = m
            .server
            .as_deref()
            .map(|s| format!(" for member {s}"))
            .unwrap_or_default();
        return Err(Error::new(Kind::NoData)
            .with_detail(format!("the controller reported {}{who}", m.value)));
    }
    let values = members.iter().map(|m| m.value);
    let n = members.len();
    let value = match aggregation.unwrap_or_default() {
        Aggregation::Sum => values.sum(),
        Aggregation::Average => values.sum::<f64>() / n as f64,
        Aggregation::Max => values.fold(f64::NEG_INFINITY, f64::max),
    };
    Ok(Sample {
        value,
        series: u32::try_from(n).unwrap_or(u32::MAX),
        read_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> Timestamp {
        Timestamp::from_second(1_700_000_000).unwrap()
    }

    const POOL: &str = "# Successfully gathered 4 metrics for pool\n\
avi_l4_server_avg_open_conns{uuid=\"pool-1\", type=\"pool\", tenant=\"admin\", server=\"10.0.0.1:80\", name=\"web\"} 41.0\n\
avi_l4_server_avg_open_conns{uuid=\"pool-1\", type=\"pool\", tenant=\"admin\", server=\"10.0.0.2:80\", name=\"web\"} 37.0\n\
avi_l7_server_avg_complete_responses{uuid=\"pool-1\", type=\"pool\", tenant=\"admin\", server=\"10.0.0.1:80\", name=\"web\"} 12.5\n\
avi_l4_server_avg_open_conns{uuid=\"pool-2\", type=\"pool\", tenant=\"admin\", server=\"10.0.0.3:80\", name=\"api\"} 5.0\n";

    fn value(l: Lookup) -> Sample {
        match l {
            Lookup::Found(Ok(s)) => s,
            other => panic!("expected a value, got {other:?}"),
        }
    }

    #[test]
    fn pool_members_combine_per_aggregation() {
        let a = Answer::parse(POOL, SelectorKind::Name, at()).unwrap();
        let sum = value(a.lookup("web", "l4_server.avg_open_conns", None));
        assert_eq!((sum.value, sum.series), (78.0, 2));
        let avg = value(a.lookup(
            "web",
            "l4_server.avg_open_conns",
            Some(Aggregation::Average),
        ));
        assert_eq!(avg.value, 39.0);
        let max = value(a.lookup("web", "l4_server.avg_open_conns", Some(Aggregation::Max)));
        assert_eq!(max.value, 41.0);
        assert_eq!(max.read_at, at());
    }

    #[test]
    fn by_uuid_reads_the_uuid_label() {
        let a = Answer::parse(POOL, SelectorKind::Uuid, at()).unwrap();
        assert_eq!(
            value(a.lookup("pool-2", "l4_server.avg_open_conns", None)).value,
            5.0
        );
        assert!(matches!(
            a.lookup("api", "l4_server.avg_open_conns", None),
            Lookup::EntityAbsent
        ));
    }

    #[test]
    fn absences_are_told_apart() {
        let a = Answer::parse(POOL, SelectorKind::Name, at()).unwrap();
        assert!(matches!(
            a.lookup("api", "l7_server.avg_complete_responses", None),
            Lookup::NoValueForEntity
        ));
        assert!(matches!(
            a.lookup("web", "l4_server.no_such_metric", None),
            Lookup::MetricAbsent
        ));
        assert!(matches!(
            a.lookup("nope", "l4_server.avg_open_conns", None),
            Lookup::EntityAbsent
        ));
    }

    #[test]
    fn cut_and_empty_answers_are_bad_responses() {
        let cut = &POOL[..POOL.rfind("avi_l4").unwrap()];
        let e = Answer::parse(cut, SelectorKind::Name, at()).unwrap_err();
        assert!(e.is_bad_response());
        assert!(
            e.to_string().contains("announced 4 samples but holds 3"),
            "{e}"
        );
        assert!(
            Answer::parse("", SelectorKind::Name, at())
                .unwrap_err()
                .is_bad_response()
        );
        let empty = Answer::parse(
            "# Successfully gathered 0 metrics for pool\n",
            SelectorKind::Name,
            at(),
        )
        .unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn metric_names_follow_avis_rule() {
        assert_eq!(
            prometheus_name("l4_server.avg_open_conns"),
            "avi_l4_server_avg_open_conns"
        );
        assert_eq!(
            announced_count("Successfully gathered 12 metrics for pool"),
            Some(12)
        );
        assert_eq!(announced_count("something else"), None);
    }

    /// The fixture files under `tests/fixtures`, read as the poller reads an answer.
    mod fixtures {
        use super::*;

        macro_rules! fixture {
            ($name:literal) => {
                include_str!(concat!("../tests/fixtures/", $name))
            };
        }

        fn answer(text: &str) -> Answer {
            Answer::parse(text, SelectorKind::Name, at()).expect("a usable answer")
        }

        fn bad(text: &str) -> String {
            let e = Answer::parse(text, SelectorKind::Name, at()).unwrap_err();
            assert!(e.is_bad_response(), "{e}");
            e.to_string()
        }

        const KUARD: &str = "k8s-03-cluster--kuard.nsx.rockhomelab.org_-routing-ns1-kuard-ingress";

        #[test]
        fn pool_with_two_members() {
            let a = answer(fixture!("pool_two_members.txt"));
            let s = value(a.lookup(KUARD, "l4_server.avg_open_conns", None));
            assert_eq!((s.value, s.series), (78.0, 2));
            let h = value(a.lookup(
                KUARD,
                "healthscore.health_score_value",
                Some(Aggregation::Max),
            ));
            assert_eq!(h.value, 100.0);
        }

        #[test]
        fn virtual_service_has_one_series() {
            let a = answer(fixture!("virtualservice.txt"));
            let s = value(a.lookup(
                "k8s-03-cluster--Shared-L7-0",
                "l4_client.max_open_conns",
                None,
            ));
            assert_eq!((s.value, s.series), (1200.0, 1));
            let bw = value(a.lookup(
                "k8s-03-cluster--Shared-L7-0",
                "l4_client.avg_bandwidth",
                None,
            ));
            assert_eq!(bw.value, 70689.623880597);
        }

        #[test]
        fn tenant_blocks_separated_by_a_blank_line() {
            let a = answer(fixture!("multi_tenant.txt"));
            assert_eq!(
                value(a.lookup("web", "l4_server.avg_open_conns", None)).value,
                5.0
            );
            assert_eq!(
                value(a.lookup("web-alpha", "l4_server.avg_open_conns", None)).value,
                7.0
            );
        }

        #[test]
        fn zero_metrics_is_empty_not_zero() {
            let a = answer(fixture!("empty.txt"));
            assert!(a.is_empty());
            assert!(matches!(
                a.lookup("web", "l4_server.avg_open_conns", None),
                Lookup::EntityAbsent
            ));
        }

        #[test]
        fn nan_and_infinities_are_no_data() {
            let a = answer(fixture!("nan_inf.txt"));
            for pool in ["web", "api", "db"] {
                match a.lookup(pool, "l4_server.avg_open_conns", None) {
                    Lookup::Found(Err(e)) => assert!(e.is_no_data(), "{e}"),
                    other => panic!("{pool}: {other:?}"),
                }
            }
            assert_eq!(
                value(a.lookup("ok", "l4_server.avg_open_conns", None)).value,
                0.0015
            );
        }

        #[test]
        fn stale_duplicates_keep_the_newest_sample() {
            let a = answer(fixture!("stale_duplicates.txt"));
            let s = value(a.lookup("web", "l4_server.avg_open_conns", None));
            // Member 1: the older (timestamped) duplicate does not replace the newer one;
            // member 2: without timestamps, the later line wins. Never counted twice.
            assert_eq!((s.value, s.series), (16.0, 2));
        }

        #[test]
        fn crlf_and_labels_without_spaces() {
            let a = answer(fixture!("crlf_no_spaces.txt"));
            assert_eq!(
                value(a.lookup("web", "l4_server.avg_open_conns", None)).value,
                3.0
            );
        }

        #[test]
        fn help_and_type_lines_are_skipped() {
            let a = answer(fixture!("described.txt"));
            assert_eq!(
                value(a.lookup("web", "l4_server.avg_open_conns", None)).value,
                4.0
            );
            assert_eq!(
                value(a.lookup("web", "l7_server.avg_complete_responses", None)).value,
                2.5
            );
        }

        #[test]
        fn escaped_names_match_their_unescaped_form() {
            let a = answer(fixture!("escaped_labels.txt"));
            let name = "a \"quoted\" \\ name\nwith newline";
            assert_eq!(
                value(a.lookup(name, "l4_server.avg_open_conns", None)).value,
                8.0
            );
        }

        #[test]
        fn malformed_and_cut_answers_are_bad_responses() {
            assert!(bad(fixture!("malformed_label.txt")).contains("line 3"));
            assert!(bad(fixture!("malformed_value.txt")).contains("value is not a number"));
            assert!(bad(fixture!("truncated_mid_line.txt")).contains("line 3: unterminated label"));
            assert!(
                bad(fixture!("truncated_at_line.txt")).contains("announced 6 samples but holds 3")
            );
            assert!(bad(fixture!("html_error_page.txt")).contains("malformed"));
        }
    }

    fn too_large(text: &str) -> Error {
        let e = Answer::parse(text, SelectorKind::Name, at()).unwrap_err();
        assert!(e.is_too_large(), "{e}");
        assert_eq!(e.reason(), api::Reason::AviResponseTooLarge);
        e
    }

    #[test]
    fn lines_over_the_limit_fail_as_too_large() {
        let mut text = "# padding\n".repeat(MAX_LINES - 1);
        text.push_str("avi_m{name=\"web\"} 1\n");
        assert!(Answer::parse(&text, SelectorKind::Name, at()).is_ok());
        text.push_str("avi_m{name=\"web\"} 2\n");
        assert!(too_large(&text).to_string().contains("lines"));
    }

    #[test]
    fn members_of_one_pool_are_indexed_and_capped() {
        // One pool with MAX_SERIES distinct members: a linear search per sample would take
        // minutes here, the index takes milliseconds.
        let line = |i: usize| format!("avi_m{{name=\"web\", server=\"10.0.{i}:80\"}} 1\n");
        let mut text: String = (0..MAX_SERIES).map(line).collect();
        let a = Answer::parse(&text, SelectorKind::Name, at()).unwrap();
        let s = value(a.lookup("web", "m", None));
        assert_eq!(s.series as usize, MAX_SERIES);
        assert_eq!(s.value, MAX_SERIES as f64);
        text.push_str(&line(MAX_SERIES));
        assert!(too_large(&text).to_string().contains("series"));
    }

    #[test]
    fn too_many_labels_on_a_line_fail_as_too_large() {
        let labels: Vec<String> = (0..=prometheus::MAX_LABELS)
            .map(|i| format!("l{i}=\"{i}\""))
            .collect();
        too_large(&format!("avi_m{{{}}} 1\n", labels.join(",")));
    }
}
