//! How a batch becomes requests: cut up front so every URL stays under the length limit and
//! names at most the batch size of entities, and cut in halves when the controller refuses one
//! (see the crate documentation, "Batching and the tick").

use std::sync::Arc;

use crate::{
    error::Error,
    query::Answer,
    transport::{MetricsRequest, Transport},
};

/// How a batch is split into requests: metric-id groups × entity chunks, as index ranges
/// into the sorted lists.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ChunkPlan {
    pub metric_groups: Vec<std::ops::Range<usize>>,
    pub entity_chunks: Vec<std::ops::Range<usize>>,
}

/// Splits lists of encoded lengths so that `fixed` + the lists (with commas) stay within
/// `max_url` and each chunk names at most `max_entities` entities. One item longer than the
/// budget still gets a request of its own. The metric ids stay in one group unless they take
/// more than half of the budget.
pub(crate) fn plan_chunks(
    entity_lens: &[usize],
    metric_lens: &[usize],
    fixed: usize,
    max_url: usize,
    max_entities: usize,
) -> ChunkPlan {
    let budget = max_url.saturating_sub(fixed);
    let list_len = |lens: &[usize]| lens.iter().sum::<usize>() + lens.len().saturating_sub(1);
    let longest_entity = entity_lens.iter().copied().max().unwrap_or(0);
    let metric_groups = if list_len(metric_lens) + longest_entity <= budget {
        std::iter::once(0..metric_lens.len()).collect()
    } else {
        greedy(metric_lens, budget / 2, usize::MAX)
    };
    let metrics_len = metric_groups
        .iter()
        .map(|r| list_len(&metric_lens[r.clone()]))
        .max()
        .unwrap_or(0);
    let entity_chunks = greedy(
        entity_lens,
        budget.saturating_sub(metrics_len),
        max_entities,
    );
    ChunkPlan {
        metric_groups,
        entity_chunks,
    }
}

fn greedy(lens: &[usize], budget: usize, max_items: usize) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut len = 0;
    for (i, &l) in lens.iter().enumerate() {
        let count = i - start;
        let added = if count == 0 { l } else { len + 1 + l };
        if count > 0 && (added > budget || count >= max_items) {
            out.push(start..i);
            start = i;
            len = l;
        } else {
            len = added;
        }
    }
    if start < lens.len() {
        out.push(start..lens.len());
    }
    out
}

/// One request of a batch and what it gave.
pub(crate) type RequestOutcome = (MetricsRequest, Result<Arc<Answer>, Error>);

/// Sends `req`; if the controller refuses it (400) and it names several entities or metric
/// ids, bisects it to find the one pair that is refused, so one unknown name cannot fail its
/// neighbours (a controller may refuse unknown names instead of ignoring them). When both
/// halves are refused the cause is not one name (a bad tenant or version, or several bad
/// names) and the bisection stops: at most two requests per halving, three when everything
/// is refused.
pub(crate) async fn fetch_split<T: Transport>(
    conn: &T,
    req: MetricsRequest,
) -> Vec<RequestOutcome> {
    let result = conn.fetch_metrics(&req).await.map(Arc::new);
    if is_refused(&result) && is_splittable(&req) {
        bisect(conn, req).await
    } else {
        vec![(req, result)]
    }
}

fn is_refused<A>(r: &Result<A, Error>) -> bool {
    matches!(r, Err(e) if e.status().is_some_and(|s| s.as_u16() == 400))
}

fn is_splittable(req: &MetricsRequest) -> bool {
    req.entities.len() > 1 || req.metric_ids.len() > 1
}

fn bisect<T: Transport>(
    conn: &T,
    req: MetricsRequest,
) -> futures::future::BoxFuture<'_, Vec<RequestOutcome>> {
    Box::pin(async move {
        let mut a = req.clone();
        let mut b = req;
        if a.entities.len() > 1 {
            b.entities = a.entities.split_off(a.entities.len() / 2);
        } else {
            b.metric_ids = a.metric_ids.split_off(a.metric_ids.len() / 2);
        }
        let ra = conn.fetch_metrics(&a).await.map(Arc::new);
        let rb = conn.fetch_metrics(&b).await.map(Arc::new);
        match (is_refused(&ra), is_refused(&rb)) {
            (true, false) if is_splittable(&a) => {
                let mut out = bisect(conn, a).await;
                out.push((b, rb));
                out
            }
            (false, true) if is_splittable(&b) => {
                let mut out = bisect(conn, b).await;
                out.push((a, ra));
                out
            }
            _ => vec![(a, ra), (b, rb)],
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_stay_under_the_url_limit_and_batch_size() {
        let plan = plan_chunks(&[10; 7], &[20, 20], 100, 160, 3);
        // budget 60: metrics take 41, so entities get 19: one 10-byte name per request.
        assert_eq!(plan.metric_groups, vec![0..2]);
        assert_eq!(plan.entity_chunks.len(), 7);
        let plan = plan_chunks(&[10; 7], &[20, 20], 100, 1000, 3);
        assert_eq!(plan.entity_chunks, vec![0..3, 3..6, 6..7]);
        // Too many metric ids for one URL: they are split too.
        let plan = plan_chunks(&[10; 2], &[100; 10], 100, 600, 50);
        assert!(plan.metric_groups.len() > 1);
        let covered: usize = plan.metric_groups.iter().map(|r| r.len()).sum();
        assert_eq!(covered, 10);
        // An item longer than the budget still gets a request.
        let plan = plan_chunks(&[5000], &[10], 100, 600, 50);
        assert_eq!(plan.entity_chunks, vec![0..1]);
        assert!(
            plan_chunks(&[], &[10], 100, 600, 50)
                .entity_chunks
                .is_empty()
        );
    }
}
