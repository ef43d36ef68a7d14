//! Pool members over time: who was a member when, under which address.
//!
//! A member's share of the load counts only while it is a member, so a bucket is cut at every
//! join and leave ([`Membership::cuts`]) and each piece is split among the members present.

use std::net::Ipv4Addr;

/// One pool member over its lifetime.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    /// The member's address.
    pub ip: Ipv4Addr,
    /// The member's port.
    pub port: u16,
    /// Seconds since the start when it joined (`-inf` for members present from the start).
    pub from: f64,
    /// Seconds since the start when it left (`+inf` while it is a member).
    pub to: f64,
}

impl Member {
    /// `ip:port`, as the `server` label and the JSON API's `obj_id` show it.
    pub fn address(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    /// Whether it is a member at `t`.
    pub fn is_active_at(&self, t: f64) -> bool {
        self.from <= t && t < self.to
    }

    /// Whether it was a member at some time in `[a, b)`.
    pub fn overlaps(&self, a: f64, b: f64) -> bool {
        self.from < b && self.to > a
    }
}

/// A pool's members over time. New members get fresh addresses, as new pods do; removal takes
/// the newest members first, as a ReplicaSet scale-down prefers the youngest pods.
#[derive(Clone, Debug, PartialEq)]
pub struct Membership {
    members: Vec<Member>,
    next_ip: u32,
    port: u16,
}

impl Membership {
    /// `count` members present since before the start, addresses counting up from `first_ip`.
    pub fn new(count: u32, first_ip: Ipv4Addr, port: u16) -> Self {
        let mut m = Self {
            members: Vec::new(),
            next_ip: u32::from(first_ip),
            port,
        };
        m.add(f64::NEG_INFINITY, count);
        m
    }

    fn add(&mut self, t: f64, count: u32) {
        for _ in 0..count {
            let ip = Ipv4Addr::from(self.next_ip);
            self.next_ip = self.next_ip.wrapping_add(1);
            self.members.push(Member {
                ip,
                port: self.port,
                from: t,
                to: f64::INFINITY,
            });
        }
    }

    /// Members with the given lifetimes (`from`, `to`), in that order, addresses counting up
    /// from `first_ip`. A lifetime that ends before it begins (a pod removed before it became
    /// ready) never served anything and is left out.
    pub fn from_lifetimes(
        lifetimes: impl IntoIterator<Item = (f64, f64)>,
        first_ip: Ipv4Addr,
        port: u16,
    ) -> Self {
        let mut m = Self {
            members: Vec::new(),
            next_ip: u32::from(first_ip),
            port,
        };
        for (from, to) in lifetimes {
            m.add(from, 1);
            if let Some(last) = m.members.last_mut() {
                last.to = to;
            }
        }
        m.members.retain(|m| m.to > m.from);
        m
    }

    /// Every member that ever was, oldest first.
    pub fn all(&self) -> &[Member] {
        &self.members
    }

    /// The members at `t`.
    pub fn active_at(&self, t: f64) -> impl Iterator<Item = &Member> {
        self.members.iter().filter(move |m| m.is_active_at(t))
    }

    /// The number of members at `t`.
    pub fn count_at(&self, t: f64) -> usize {
        self.active_at(t).count()
    }

    /// Makes the pool have `count` members from `t` on.
    pub fn set_count(&mut self, t: f64, count: u32) {
        let active = self.count_at(t) as u32;
        if count > active {
            self.add(t, count - active);
        } else {
            let mut to_remove = active - count;
            for m in self.members.iter_mut().rev() {
                if to_remove == 0 {
                    break;
                }
                if m.is_active_at(t) {
                    m.to = t;
                    to_remove -= 1;
                }
            }
            // A member that joined and left at the same instant never served anything.
            self.members.retain(|m| m.to > m.from);
        }
    }

    /// The times in `(a, b)` where membership changes, with `a` and `b`, sorted.
    pub fn cuts(&self, a: f64, b: f64) -> Vec<f64> {
        let mut cuts = vec![a, b];
        for m in &self.members {
            for t in [m.from, m.to] {
                if t > a && t < b {
                    cuts.push(t);
                }
            }
        }
        cuts.sort_by(f64::total_cmp);
        cuts.dedup();
        cuts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership_changes_take_newest_first_and_use_fresh_addresses() {
        let mut m = Membership::new(1, Ipv4Addr::new(10, 244, 1, 10), 8080);
        m.set_count(100.0, 3);
        assert_eq!(m.count_at(99.0), 1);
        assert_eq!(m.count_at(100.0), 3);
        m.set_count(200.0, 1);
        let addrs: Vec<_> = m.active_at(200.0).map(Member::address).collect();
        assert_eq!(addrs, ["10.244.1.10:8080"]);
        m.set_count(300.0, 2);
        let addrs: Vec<_> = m.active_at(300.0).map(Member::address).collect();
        assert_eq!(addrs, ["10.244.1.10:8080", "10.244.1.13:8080"]);
        assert_eq!(m.cuts(0.0, 400.0), vec![0.0, 100.0, 200.0, 300.0, 400.0]);
        // Joining and leaving at the same instant leaves no trace.
        m.set_count(300.0, 1);
        assert_eq!(m.all().len(), 3);
    }

    #[test]
    fn lifetimes_keep_their_order_and_drop_those_that_never_began() {
        let ip = Ipv4Addr::new(10, 0, 0, 1);
        let m = Membership::from_lifetimes(
            [
                (f64::NEG_INFINITY, f64::INFINITY),
                (130.0, 110.0),
                (130.0, f64::INFINITY),
            ],
            ip,
            80,
        );
        let addrs: Vec<_> = m.all().iter().map(Member::address).collect();
        assert_eq!(addrs, ["10.0.0.1:80", "10.0.0.3:80"]);
        assert_eq!(m.count_at(129.0), 1);
        assert_eq!(m.count_at(130.0), 2);
        assert!(m.all()[0].overlaps(-1e9, 0.0));
    }
}
