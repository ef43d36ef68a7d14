//! Why a pair is absent from its answer.
//!
//! The Prometheus text cannot tell an unknown entity, an unknown metric and an entity without a
//! value now apart, so for absent pairs only the JSON APIs are asked: the metric catalog, then
//! the inventory (see the crate documentation, "The JSON APIs: only to explain an absence").

use std::collections::{BTreeMap, BTreeSet, HashMap};

use api::EntityType;
use futures::StreamExt;

use crate::{
    error::{Error, Kind},
    query::{EntitySelector, SelectorKind},
    transport::{Pair, Transport},
};

/// Why a pair has no value in its answer, before the cause is looked up.
#[derive(Debug)]
pub(crate) enum Absent {
    /// The entity is not in the answer at all.
    Entity,
    /// The entity is, but no entity answered this metric.
    Metric,
    /// The controller refused the request (400) even with this pair alone.
    Refused(Error),
}

/// The batch whose absent pairs are explained.
pub(crate) struct Batch<'a> {
    /// The tenant asked.
    pub tenant: &'a str,
    /// The entity type asked.
    pub entity_type: EntityType,
    /// Whether entities were named by name or uuid.
    pub by: SelectorKind,
}

/// Works out why pairs of `batch` are absent from their answer, with at most `max_lookups`
/// metric-id and entity lookups, `concurrency` at a time: one error per pair.
pub(crate) async fn explain<T: Transport>(
    conn: &T,
    batch: &Batch<'_>,
    absent: BTreeMap<Pair, Absent>,
    max_lookups: usize,
    concurrency: usize,
) -> HashMap<Pair, Error> {
    let budget = max_lookups;
    // Metric ids first (one catalog read serves them all), then entities, both capped.
    let metric_ids: BTreeSet<&str> = absent.keys().map(|k| k.1.as_str()).collect();
    let mut metric_known: HashMap<&str, Result<bool, Error>> = HashMap::new();
    for m in metric_ids.into_iter().take(budget) {
        metric_known.insert(m, conn.metric_known(batch.entity_type, m).await);
    }
    let mut entities: BTreeSet<&str> = BTreeSet::new();
    for (k, why) in &absent {
        let metric_unknown = matches!(metric_known.get(k.1.as_str()), Some(Ok(false)));
        if matches!(why, Absent::Entity | Absent::Refused(_)) && !metric_unknown {
            entities.insert(k.0.as_str());
        }
    }
    let lookups: Vec<(String, EntitySelector)> = entities
        .into_iter()
        .take(budget)
        .map(|e| {
            let sel = match batch.by {
                SelectorKind::Name => EntitySelector::Name(e.to_owned()),
                SelectorKind::Uuid => EntitySelector::Uuid(e.to_owned()),
            };
            (e.to_owned(), sel)
        })
        .collect();
    let tenant = batch.tenant;
    let entity_type = batch.entity_type;
    let entity_exists: HashMap<String, Result<bool, Error>> = futures::stream::iter(lookups)
        .map(move |(e, sel)| async move {
            let r = conn.entity_exists(tenant, entity_type, &sel).await;
            (e, r)
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;

    let mut out = HashMap::with_capacity(absent.len());
    for (key, why) in &absent {
        let what = format!("{}/{} {}", batch.entity_type.as_str(), key.0, key.1);
        let err = match (metric_known.get(key.1.as_str()), why) {
            (Some(Ok(false)), _) => Error::new(Kind::UnknownMetric).with_detail(format!(
                "{what}: the controller offers no metric {} for {} entities",
                key.1,
                batch.entity_type.as_str()
            )),
            (_, Absent::Refused(refused)) => match entity_exists.get(key.0.as_str()) {
                Some(Ok(false)) => unknown_entity(&what, batch),
                _ => refused.clone(),
            },
            (_, Absent::Entity) => match entity_exists.get(key.0.as_str()) {
                Some(Ok(false)) => unknown_entity(&what, batch),
                Some(Ok(true)) => Error::new(Kind::NoData).with_detail(format!(
                    "{what}: the entity exists but the controller has no value for it \
                     (a pool without members, or realtime metrics not enabled?)"
                )),
                Some(Err(e)) => {
                    Error::new(Kind::NoData).with_detail(format!("{what}: not in the answer ({e})"))
                }
                None => Error::new(Kind::NoData).with_detail(format!(
                    "{what}: not in the answer (cause not looked up: too many absent)"
                )),
            },
            _ => no_value(key),
        };
        out.insert(key.clone(), err);
    }
    out
}

fn unknown_entity(what: &str, batch: &Batch<'_>) -> Error {
    Error::new(Kind::UnknownEntity).with_detail(format!(
        "{what}: no such {} in tenant {}",
        batch.entity_type.as_str(),
        batch.tenant
    ))
}

/// The error of a pair whose entity answered other metrics but not this one.
pub(crate) fn no_value(pair: &Pair) -> Error {
    Error::new(Kind::NoData).with_detail(format!(
        "{}: the answer held other metrics of the entity but no value for this one",
        pair.0
    ))
}
