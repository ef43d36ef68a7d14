//! Sharding: which process manages which AviAutoscaler, and how processes with different shard
//! counts hand objects over without two of them ever acting on one object.
//!
//! An object belongs to shard `fnv1a64("<namespace>/<name>") mod count` ([`shard_of`]). The hash
//! is FNV-1a 64 over the UTF-8 bytes of the namespace, a `/` and the name: a fixed function,
//! never seeded, that must never change between versions (the unit tests pin it with fixed
//! vectors; `docs/sharding.md` documents it).
//!
//! Each shard elects its leader on a Lease of its own ([`lease_name`]), and the holder records
//! its shard count on the Lease ([`SHARD_COUNT_ANNOTATION`]). While the count changes (a
//! rolling update runs processes with the old and the new count side by side), an object can be
//! claimed by two live Leases. Then only the claimer whose Lease was acquired first acts
//! ([`ShardLease::may_act`]); a younger claimer waits until the older Lease is released (on graceful
//! shutdown) or expires. Every process reads the same Leases, so they all agree who that is.

use std::collections::BTreeMap;

use api::AviAutoscaler;
use k8s_openapi::{api::coordination::v1::Lease, jiff::Timestamp};
use kube::{
    ResourceExt,
    api::ObjectMeta,
    runtime::{reflector::store::Writer, watcher},
};

/// The annotation on a shard's Lease that holds the shard count of its holder.
pub const SHARD_COUNT_ANNOTATION: &str = "autoscaling.avi.dev/shard-count";

/// The FNV-1a 64 hash of `"<namespace>/<name>"`.
pub fn object_hash(namespace: &str, name: &str) -> u64 {
    use std::hash::Hasher as _;
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(namespace.as_bytes());
    hasher.write(b"/");
    hasher.write(name.as_bytes());
    hasher.finish()
}

/// The shard, out of `count`, that the object `namespace/name` belongs to.
pub fn shard_of(namespace: &str, name: &str, count: u32) -> u32 {
    // The remainder is below `count`, so it fits.
    (object_hash(namespace, name) % u64::from(count.max(1))) as u32
}

/// One shard of `count`: what `--shard-index` and `--shard-count` select.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// `--shard-index`, below `count`.
    pub index: u32,
    /// `--shard-count`, at least 1.
    pub count: u32,
}

impl Shard {
    /// Every object: one shard of one.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// The index as `status.shard` shows it (the index is at most 1023, see `--shard-count`).
    pub fn status_index(&self) -> i32 {
        i32::try_from(self.index).unwrap_or(i32::MAX)
    }

    /// Whether the object `namespace/name` belongs to this shard.
    pub fn owns(&self, namespace: &str, name: &str) -> bool {
        shard_of(namespace, name, self.count) == self.index
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The Lease of `shard`: `base` itself for a single shard (the name releases without sharding
/// used, so an upgrade keeps its lease), `<base>-<index>` otherwise.
pub fn lease_name(base: &str, shard: Shard) -> String {
    if shard.count == 1 {
        base.to_owned()
    } else {
        format!("{base}-{}", shard.index)
    }
}

/// What one live shard Lease claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The Lease's name.
    pub lease: String,
    /// Its holder.
    pub holder: String,
    /// The shard its holder manages; `None` when the Lease does not say (no or a bad count
    /// annotation on a `<base>-<index>` Lease): such a holder may manage anything.
    pub shard: Option<Shard>,
    /// When its holder acquired it (`None`: unknown, counted as the oldest).
    pub acquired: Option<Timestamp>,
    /// When it expires unless renewed.
    pub expires: Timestamp,
}

impl Claim {
    /// Reads a Lease: `None` unless it is a shard Lease of `base` (`base` or `<base>-<digits>`)
    /// with a holder whose term has not ended at `now`.
    pub fn of(lease: &Lease, base: &str, now: Timestamp) -> Option<Claim> {
        let name = lease.name_any();
        let index = if name == base {
            Some(0)
        } else {
            let digits = name.strip_prefix(base)?.strip_prefix('-')?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some(digits.parse::<u32>().ok()?)
        };
        let spec = lease.spec.as_ref()?;
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty())?;
        let renewed = spec.renew_time.as_ref().or(spec.acquire_time.as_ref())?.0;
        let seconds = spec.lease_duration_seconds?;
        let expires = renewed
            .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(i64::from(
                seconds.max(0),
            )))
            .ok()?;
        if expires <= now {
            return None;
        }
        let count = lease
            .annotations()
            .get(SHARD_COUNT_ANNOTATION)
            .and_then(|c| c.parse::<u32>().ok());
        let shard = match (index, count) {
            // The unsuffixed Lease is the single shard's, also when written by a release
            // without sharding (no annotation).
            (Some(0), None) if name == base => Some(Shard::ALL),
            (Some(index), Some(count)) if count >= 1 && index < count => {
                Some(Shard { index, count })
            }
            _ => None,
        };
        Some(Claim {
            lease: name,
            holder,
            shard,
            acquired: spec.acquire_time.as_ref().map(|t| t.0),
            expires,
        })
    }

    /// Whether its holder may manage `namespace/name`.
    pub fn claims(&self, namespace: &str, name: &str) -> bool {
        self.shard.is_none_or(|s| s.owns(namespace, name))
    }

    /// Which of two claims came first: acquisition time, then Lease name.
    fn precedence(&self) -> (Option<Timestamp>, &str) {
        (self.acquired, &self.lease)
    }
}

/// Why this process does not act on an object now.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Wait {
    /// The object belongs to another shard of this process's count.
    #[error("the object belongs to shard {owner}, not to this process's shard {shard}")]
    OtherShard {
        /// The object's shard under this process's count.
        owner: u32,
        /// This process's shard.
        shard: Shard,
    },
    /// This process's own Lease does not show it holding this shard yet (not acquired, the
    /// shard count not written, or not seen in the Lease cache yet).
    #[error("this replica's lease {lease} does not show it holding shard {shard} yet")]
    NotConfirmed {
        /// The Lease.
        lease: String,
        /// This process's shard.
        shard: Shard,
    },
    /// A Lease acquired earlier by a process with another shard count claims the object.
    #[error(
        "the object is also claimed by lease {lease}, held by {holder} since before this replica's, until it is released or expires at {expires}"
    )]
    ClaimedBy {
        /// The older Lease.
        lease: String,
        /// Its holder.
        holder: String,
        /// When it expires unless renewed.
        expires: Timestamp,
    },
}

/// This process's place among the shard Leases.
#[derive(Clone, Debug)]
pub struct ShardLease {
    /// `--lease-name`: the base of every shard's Lease name.
    pub base: String,
    /// The name of this shard's Lease ([`lease_name`]).
    pub name: String,
    /// This replica's identity.
    pub identity: String,
    /// This process's shard.
    pub shard: Shard,
}

impl ShardLease {
    /// The shard Lease of `shard` with base name `base`, held as `identity`.
    pub fn new(base: &str, identity: &str, shard: Shard) -> Self {
        ShardLease {
            base: base.to_owned(),
            name: lease_name(base, shard),
            identity: identity.to_owned(),
            shard,
        }
    }

    /// Whether this process may act on `namespace/name`, given the Leases it sees at `now`: its
    /// own Lease must name it and carry its shard count, and no live shard Lease acquired before
    /// it may claim the object.
    pub fn may_act<'a>(
        &self,
        leases: impl IntoIterator<Item = &'a Lease>,
        namespace: &str,
        name: &str,
        now: Timestamp,
    ) -> Result<(), Wait> {
        if !self.shard.owns(namespace, name) {
            return Err(Wait::OtherShard {
                owner: shard_of(namespace, name, self.shard.count),
                shard: self.shard,
            });
        }
        let claims: BTreeMap<String, Claim> = leases
            .into_iter()
            .filter_map(|l| Claim::of(l, &self.base, now))
            .map(|c| (c.lease.clone(), c))
            .collect();
        let mine = claims
            .get(&self.name)
            .filter(|c| c.holder == self.identity && c.shard == Some(self.shard))
            .ok_or_else(|| Wait::NotConfirmed {
                lease: self.name.clone(),
                shard: self.shard,
            })?;
        match claims
            .values()
            .filter(|c| c.lease != self.name && c.claims(namespace, name))
            .filter(|c| c.precedence() < mine.precedence())
            .min_by(|a, b| a.precedence().cmp(&b.precedence()))
        {
            Some(older) => Err(Wait::ClaimedBy {
                lease: older.lease.clone(),
                holder: older.holder.clone(),
                expires: older.expires,
            }),
            None => Ok(()),
        }
    }
}

/// Splits one watch of AviAutoscalers: the objects of this shard go on to the reflector and the
/// Controller; the others are left out, so they are neither kept nor reconciled. Of those a
/// stripped copy (metadata, `scaleTargetRef`, `controllerRef`) goes to a store of their own:
/// enough to see another shard's autoscaler on the same workload (`AmbiguousTarget`) and to
/// count an AviController's autoscalers, at a fraction of the memory.
pub struct ShardFilter {
    shard: Shard,
    others: Writer<AviAutoscaler>,
}

impl ShardFilter {
    /// A filter for `shard`; the stripped copies of other shards' objects go to `others`.
    pub fn new(shard: Shard, others: Writer<AviAutoscaler>) -> Self {
        ShardFilter { shard, others }
    }

    fn owns(&self, obj: &AviAutoscaler) -> bool {
        self.shard
            .owns(&obj.namespace().unwrap_or_default(), &obj.name_any())
    }

    /// The event for this shard's watch, if any.
    pub fn event(
        &mut self,
        event: watcher::Event<AviAutoscaler>,
    ) -> Option<watcher::Event<AviAutoscaler>> {
        use watcher::Event as E;
        match event {
            E::Init | E::InitDone => {
                self.others.apply_watcher_event(&event);
                Some(event)
            }
            E::InitApply(obj) if !self.owns(&obj) => {
                self.others.apply_watcher_event(&E::InitApply(strip(&obj)));
                None
            }
            E::Apply(obj) if !self.owns(&obj) => {
                self.others.apply_watcher_event(&E::Apply(strip(&obj)));
                None
            }
            E::Delete(obj) if !self.owns(&obj) => {
                self.others.apply_watcher_event(&E::Delete(strip(&obj)));
                None
            }
            owned => Some(owned),
        }
    }
}

/// What another shard's object keeps in this process: its identity and what ownership and
/// AviController counts read.
fn strip(obj: &AviAutoscaler) -> AviAutoscaler {
    let meta = &obj.metadata;
    let mut spec = obj.spec.clone();
    spec.metrics = Vec::new();
    spec.controller = None;
    spec.behavior = None;
    spec.fallback = None;
    AviAutoscaler {
        metadata: ObjectMeta {
            name: meta.name.clone(),
            namespace: meta.namespace.clone(),
            uid: meta.uid.clone(),
            creation_timestamp: meta.creation_timestamp.clone(),
            deletion_timestamp: meta.deletion_timestamp.clone(),
            ..ObjectMeta::default()
        },
        spec,
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
    use serde_json::json;

    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    /// A Lease held by `holder`, acquired at `acquired` and renewed at `renewed` for 15 s, with
    /// `count` in the annotation.
    fn lease(name: &str, holder: &str, acquired: i64, renewed: i64, count: Option<u32>) -> Lease {
        let mut lease: Lease = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "ops"},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15},
        }))
        .unwrap();
        let spec = lease.spec.as_mut().unwrap();
        spec.acquire_time = Some(MicroTime(at(acquired)));
        spec.renew_time = Some(MicroTime(at(renewed)));
        if let Some(count) = count {
            lease
                .annotations_mut()
                .insert(SHARD_COUNT_ANNOTATION.into(), count.to_string());
        }
        lease
    }

    #[test]
    fn the_hash_is_fnv1a_64_of_namespace_slash_name() {
        assert_eq!(object_hash("", ""), 0xaf63a24c860189fe); // the hash of "/"
        assert_eq!(object_hash("a", "b"), 0xe620c3190468cf61);
        assert_eq!(object_hash("routing-ns1", "kuard"), 0x331dee438cf96530);
        assert_eq!(object_hash("default", "web"), 0x9d2ba50824d634bb);
    }

    #[test]
    fn objects_map_to_fixed_shards() {
        // These must never change: a change would move objects between shards on an upgrade.
        let vectors = [
            ("routing-ns1", "kuard", 2, 0),
            ("routing-ns1", "kuard", 3, 2),
            ("default", "web", 2, 1),
            ("default", "web", 3, 1),
            ("a", "b", 5, 4),
            ("default", "web-3", 2, 1),
            ("default", "web-3", 3, 0),
            ("default", "web-6", 2, 0),
            ("default", "web-6", 3, 0),
        ];
        for (ns, name, count, shard) in vectors {
            assert_eq!(shard_of(ns, name, count), shard, "{ns}/{name} of {count}");
        }
        for i in 0..100 {
            assert_eq!(shard_of("ns", &format!("o{i}"), 1), 0);
        }
    }

    #[test]
    fn shards_split_objects_evenly_enough() {
        let mut counts = [0u32; 3];
        for i in 0..3000 {
            counts[shard_of("tenants", &format!("obj-{i:04}"), 3) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (900..1100).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn a_single_shard_keeps_the_unsuffixed_lease() {
        assert_eq!(lease_name("aas", Shard::ALL), "aas");
        assert_eq!(lease_name("aas", Shard { index: 2, count: 3 }), "aas-2");
    }

    #[test]
    fn only_live_shard_leases_of_the_base_name_claim() {
        let now = at(5);
        assert!(Claim::of(&lease("aas-1", "p", 0, 0, Some(2)), "aas", now).is_some());
        // Expired, another base name, a non-numeric suffix.
        assert!(Claim::of(&lease("aas-1", "p", 0, 0, Some(2)), "aas", at(15)).is_none());
        assert!(Claim::of(&lease("other-1", "p", 0, 0, Some(2)), "aas", now).is_none());
        assert!(Claim::of(&lease("aas-x", "p", 0, 0, Some(2)), "aas", now).is_none());
        // Released: no holder.
        let mut released = lease("aas-1", "p", 0, 0, Some(2));
        released.spec.as_mut().unwrap().holder_identity = None;
        assert!(Claim::of(&released, "aas", now).is_none());
        // The unsuffixed Lease without annotation is a single shard; a suffixed one without
        // (or with a count its index does not fit) may claim anything.
        let legacy = Claim::of(&lease("aas", "p", 0, 0, None), "aas", now).unwrap();
        assert_eq!(legacy.shard, Some(Shard::ALL));
        let unknown = Claim::of(&lease("aas-3", "p", 0, 0, Some(2)), "aas", now).unwrap();
        assert_eq!(unknown.shard, None);
        assert!(unknown.claims("any", "thing"));
    }

    /// Two objects: one both counts give to the same index, one they give to different ones.
    fn objects() -> ((&'static str, &'static str), (&'static str, &'static str)) {
        // default/web-6: shard 0 of 2 and of 3; default/web-3: 1 of 2, 0 of 3 (see the vectors
        // above).
        (("default", "web-6"), ("default", "web-3"))
    }

    #[test]
    fn the_older_claimer_acts_and_the_younger_waits() {
        let (_, moving) = objects();
        assert_eq!(shard_of(moving.0, moving.1, 2), 1);
        assert_eq!(shard_of(moving.0, moving.1, 3), 0);
        // Old: shard 1 of 2 since t=0. New: shard 0 of 3 since t=3.
        let leases = [
            lease("aas-1", "old", 0, 4, Some(2)),
            lease("aas-0", "new", 3, 4, Some(3)),
        ];
        let old = Shard { index: 1, count: 2 };
        let new = Shard { index: 0, count: 3 };
        let now = at(5);
        let check =
            |id, shard| ShardLease::new("aas", id, shard).may_act(&leases, moving.0, moving.1, now);
        assert_eq!(check("old", old), Ok(()));
        assert!(matches!(
            check("new", new),
            Err(Wait::ClaimedBy { lease, holder, .. }) if lease == "aas-1" && holder == "old"
        ));
        // Once the old Lease is gone (expired here), the new holder acts.
        let later = at(20);
        let leases = [lease("aas-0", "new", 3, 19, Some(3))];
        assert_eq!(
            ShardLease::new("aas", "new", new).may_act(&leases, moving.0, moving.1, later),
            Ok(())
        );
    }

    #[test]
    fn claims_that_do_not_meet_do_not_wait() {
        // default/web-6 is shard 0 of 2 and 0 of 3: an old shard 1 of 2 does not claim it.
        let (stays, _) = objects();
        let leases = [
            lease("aas-1", "old", 0, 4, Some(2)),
            lease("aas-0", "new", 3, 4, Some(3)),
        ];
        let new = Shard { index: 0, count: 3 };
        assert_eq!(
            ShardLease::new("aas", "new", new).may_act(&leases, stays.0, stays.1, at(5)),
            Ok(())
        );
    }

    #[test]
    fn another_shards_object_is_never_acted_on() {
        let (_, moving) = objects();
        let leases = [lease("aas-0", "p", 0, 4, Some(2))];
        let shard0 = Shard { index: 0, count: 2 };
        assert_eq!(
            ShardLease::new("aas", "p", shard0).may_act(&leases, moving.0, moving.1, at(5)),
            Err(Wait::OtherShard {
                owner: 1,
                shard: shard0
            })
        );
    }

    #[test]
    fn an_own_lease_without_this_count_or_holder_waits() {
        let (stays, _) = objects();
        let new = Shard { index: 0, count: 3 };
        // Just acquired: the old holder's count is still on the Lease.
        let leases = [lease("aas-0", "new", 3, 4, Some(2))];
        assert!(matches!(
            ShardLease::new("aas", "new", new).may_act(&leases, stays.0, stays.1, at(5)),
            Err(Wait::NotConfirmed { .. })
        ));
        let leases = [lease("aas-0", "other", 3, 4, Some(3))];
        assert!(matches!(
            ShardLease::new("aas", "new", new).may_act(&leases, stays.0, stays.1, at(5)),
            Err(Wait::NotConfirmed { .. })
        ));
        assert!(matches!(
            ShardLease::new("aas", "new", new).may_act([], stays.0, stays.1, at(5)),
            Err(Wait::NotConfirmed { .. })
        ));
    }

    #[test]
    fn a_legacy_unsharded_lease_holds_everything_back() {
        // A release without sharding holds the unsuffixed Lease: it claims every object.
        let (stays, moving) = objects();
        let leases = [
            lease("aas", "legacy", 0, 4, None),
            lease("aas-0", "new0", 3, 4, Some(2)),
            lease("aas-1", "new1", 3, 4, Some(2)),
        ];
        let new0 = Shard { index: 0, count: 2 };
        let new1 = Shard { index: 1, count: 2 };
        assert!(
            ShardLease::new("aas", "new0", new0)
                .may_act(&leases, stays.0, stays.1, at(5))
                .is_err_and(|w| matches!(w, Wait::ClaimedBy { lease, .. } if lease == "aas"))
        );
        assert!(
            ShardLease::new("aas", "new1", new1)
                .may_act(&leases, moving.0, moving.1, at(5))
                .is_err_and(|w| matches!(w, Wait::ClaimedBy { lease, .. } if lease == "aas"))
        );
    }
}
