//! What the poller asks of a controller, and the shape of its batch requests.
//!
//! The poller plans and caches; a [`Transport`] sends. The HTTP connection (`client`)
//! implements it in production and a fake does in the poller's unit tests, so batching is
//! tested without HTTP. Both sides share the request type and its encoding from here.

use std::{future::Future, time::Duration};

use api::EntityType;

use crate::{
    error::Error,
    query::{Answer, EntitySelector, SelectorKind},
};

/// One (entity, metric id) pair of a batch: the unit the poller caches and answers.
pub(crate) type Pair = (String, String);

/// A batch request: one tenant, entity type, realtime flag and selector kind, with lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MetricsRequest {
    /// The batch (poll) it belongs to, numbered from 1.
    pub poll: u64,
    pub tenant: String,
    pub entity_type: EntityType,
    pub realtime: bool,
    pub by: SelectorKind,
    pub entities: Vec<String>,
    pub metric_ids: Vec<String>,
}

impl MetricsRequest {
    /// The query string, exactly as sent.
    pub(crate) fn query(&self) -> String {
        let mut q = format!(
            "{}={}&metric_id={}&tenant={}",
            self.by.query_param(),
            encode_list(self.entities.iter().map(String::as_str)),
            encode_list(self.metric_ids.iter().map(String::as_str)),
            encode_list([self.tenant.as_str()]),
        );
        if self.realtime {
            q.push_str("&realtime=true");
        }
        q
    }
}

/// What the poller needs from a controller connection; the HTTP connection in production, a
/// fake in unit tests.
pub(crate) trait Transport: Send + Sync + 'static {
    /// Sends one batch request to the Prometheus endpoint and reads the answer.
    fn fetch_metrics(
        &self,
        req: &MetricsRequest,
    ) -> impl Future<Output = Result<Answer, Error>> + Send;

    /// Whether the entity exists in the tenant.
    fn entity_exists(
        &self,
        tenant: &str,
        entity_type: EntityType,
        entity: &EntitySelector,
    ) -> impl Future<Output = Result<bool, Error>> + Send;

    /// Whether the controller offers `metric_id` for `entity_type`.
    fn metric_known(
        &self,
        entity_type: EntityType,
        metric_id: &str,
    ) -> impl Future<Output = Result<bool, Error>> + Send;

    /// The longest URL prefix (endpoint and path, up to `?`) a metrics request can have.
    fn url_prefix_len(&self, entity_type: EntityType) -> usize;

    /// Marks the connection used now.
    fn touch(&self);

    /// How long since it was last used.
    fn idle_for(&self) -> Duration;
}

/// Encodes one value for a comma-separated list parameter: form encoding, so a `,` inside a
/// name cannot split it.
pub(crate) fn encode_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.extend(url::form_urlencoded::byte_serialize(item.as_bytes()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_items_are_encoded_but_commas_separate() {
        assert_eq!(
            encode_list(["a b", "c,d", "k8s--x.y_-ns"]),
            "a+b,c%2Cd,k8s--x.y_-ns"
        );
    }
}
