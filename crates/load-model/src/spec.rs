//! The `load` of a scenario: users over time and what each user does, as YAML gives it.
//!
//! One vocabulary for `avi-autoscaler simulate` (`metrics[].load`) and avi-sim
//! (`pools[].load`, `PUT /_sim/pools/{pool}/load`): camelCase keys, unknown keys refused, and
//! errors that name the field.

use serde::{Deserialize, Serialize};

use crate::bucket::Traffic;
use crate::users::{Polyline, ramp, steps};

/// Users over time and what each user does. Either a Locust-style ramp (`maxUsers` with
/// optional `spawnRate`, `startAt`, `stopAt`, `stopRate`) or a step `series`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoadSpec {
    /// Users started per second (default: all at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spawn_rate: Option<f64>,
    /// The number of users the ramp reaches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_users: Option<f64>,
    /// Seconds after the start when users begin to arrive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<f64>,
    /// Seconds after the start when the users stop (default: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_at: Option<f64>,
    /// Users stopped per second from `stopAt` (default: all at once, as Locust does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_rate: Option<f64>,
    /// Piecewise-constant users: `[{at: seconds, users: n}, …]`, 0 before the first point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<Vec<SeriesPoint>>,
    /// Open backend connections per user.
    #[serde(default = "one")]
    pub conns_per_user: f64,
    /// HTTP requests per second per user.
    #[serde(default = "one")]
    pub requests_per_user_per_second: f64,
    /// Server response time, milliseconds (`l7_server.avg_resp_latency`).
    #[serde(default = "default_response_ms")]
    pub response_time_ms: f64,
    /// Which value one metric reads: the pool total or a member's. Only `simulate` reads it (it
    /// turns a load into one metric's value); avi-sim serves every member's line and the pool
    /// total alike.
    #[serde(default, skip_serializing_if = "Per::is_pool")]
    pub per: Per,
}

/// One step of a users series.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeriesPoint {
    /// Seconds after the start.
    pub at: f64,
    /// Users from then on.
    pub users: f64,
}

/// Which value a metric reads from a pool's load.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Per {
    /// The total over the pool (what `aggregation: Sum` reads, or a virtual service's metric).
    #[default]
    Pool,
    /// A pool member's value (what `aggregation: Average` or `Max` reads).
    Member,
}

impl Per {
    fn is_pool(&self) -> bool {
        *self == Per::Pool
    }
}

/// A load that cannot be used, with the field at fault (relative to the load).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidLoad {
    /// The field, for example `spawnRate` or `series[1].at`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl InvalidLoad {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for InvalidLoad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for InvalidLoad {}

impl LoadSpec {
    /// The seed experiment's load: 1000 users spawned at 5/s from 0, stopped at 1320 s.
    pub fn seed() -> Self {
        Self {
            spawn_rate: Some(5.0),
            max_users: Some(1000.0),
            start_at: Some(0.0),
            stop_at: Some(1320.0),
            ..Self::constant(0.0)
        }
    }

    /// `users` users from the start on.
    pub fn constant(users: f64) -> Self {
        Self {
            spawn_rate: None,
            max_users: Some(users),
            start_at: None,
            stop_at: None,
            stop_rate: None,
            series: None,
            conns_per_user: 1.0,
            requests_per_user_per_second: 1.0,
            response_time_ms: default_response_ms(),
            per: Per::Pool,
        }
    }

    /// The users-over-time function.
    pub fn users(&self) -> Polyline {
        match &self.series {
            Some(series) => steps(&series.iter().map(|p| (p.at, p.users)).collect::<Vec<_>>()),
            None => ramp(
                self.start_at.unwrap_or(0.0),
                self.max_users.unwrap_or(0.0),
                self.spawn_rate,
                self.stop_at,
                self.stop_rate,
            ),
        }
    }

    /// What each user does.
    pub fn traffic(&self) -> Traffic {
        Traffic {
            conns_per_user: self.conns_per_user,
            requests_per_user_per_second: self.requests_per_user_per_second,
            response_time_ms: self.response_time_ms,
        }
    }

    /// Checks the numbers; the error names the field (relative to the load).
    pub fn validate(&self) -> Result<(), InvalidLoad> {
        let nonneg = |field: &str, v: Option<f64>| match v {
            Some(x) if !(x.is_finite() && x >= 0.0) => Err(InvalidLoad::new(
                field,
                format!("must be a finite number >= 0, got {x}"),
            )),
            _ => Ok(()),
        };
        nonneg("maxUsers", self.max_users)?;
        nonneg("startAt", self.start_at)?;
        nonneg("stopAt", self.stop_at)?;
        nonneg("connsPerUser", Some(self.conns_per_user))?;
        nonneg(
            "requestsPerUserPerSecond",
            Some(self.requests_per_user_per_second),
        )?;
        nonneg("responseTimeMs", Some(self.response_time_ms))?;
        for (field, rate) in [("spawnRate", self.spawn_rate), ("stopRate", self.stop_rate)] {
            if let Some(r) = rate
                && !(r.is_finite() && r > 0.0)
            {
                return Err(InvalidLoad::new(
                    field,
                    format!("must be > 0 (omit it for at once), got {r}"),
                ));
            }
        }
        if let Some(stop) = self.stop_at {
            let start = self.start_at.unwrap_or(0.0);
            if stop <= start {
                return Err(InvalidLoad::new(
                    "stopAt",
                    format!("must be after startAt ({start}), got {stop}"),
                ));
            }
        }
        match &self.series {
            Some(series) => {
                for (field, set) in [
                    ("spawnRate", self.spawn_rate.is_some()),
                    ("maxUsers", self.max_users.is_some()),
                    ("startAt", self.start_at.is_some()),
                    ("stopAt", self.stop_at.is_some()),
                    ("stopRate", self.stop_rate.is_some()),
                ] {
                    if set {
                        return Err(InvalidLoad::new(
                            field,
                            "give either a series or a ramp, not both",
                        ));
                    }
                }
                validate_series(series)
            }
            None if self.max_users.is_none() => Err(InvalidLoad::new(
                "maxUsers",
                "a ramp needs maxUsers (or give a series)",
            )),
            None => Ok(()),
        }
    }
}

fn validate_series(series: &[SeriesPoint]) -> Result<(), InvalidLoad> {
    if series.is_empty() {
        return Err(InvalidLoad::new("series", "needs at least one point"));
    }
    let mut last = f64::NEG_INFINITY;
    for (i, p) in series.iter().enumerate() {
        if !p.at.is_finite() || p.at < last {
            return Err(InvalidLoad::new(
                format!("series[{i}].at"),
                format!(
                    "must be finite and not before the previous point, got {}",
                    p.at
                ),
            ));
        }
        if !(p.users.is_finite() && p.users >= 0.0) {
            return Err(InvalidLoad::new(
                format!("series[{i}].users"),
                format!("must be a finite number >= 0, got {}", p.users),
            ));
        }
        last = p.at;
    }
    Ok(())
}

fn one() -> f64 {
    1.0
}

fn default_response_ms() -> f64 {
    5.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> LoadSpec {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn field_of(yaml: &str) -> String {
        parse(yaml).validate().unwrap_err().field
    }

    #[test]
    fn the_simulate_and_avi_sim_spellings_are_one_load() {
        let simulate = parse(
            "{spawnRate: 5, maxUsers: 1000, startAt: 0, stopAt: 1320, connsPerUser: 1, per: pool}",
        );
        let avi_sim = parse("{spawnRate: 5, maxUsers: 1000, startAt: 0, stopAt: 1320}");
        assert_eq!(simulate, LoadSpec::seed());
        assert_eq!(avi_sim, LoadSpec::seed());
        assert_eq!(
            parse("{spawnRate: 5, maxUsers: 100, per: member}").per,
            Per::Member
        );
        let yaml = serde_yaml::to_string(&LoadSpec::seed()).unwrap();
        assert!(!yaml.contains("per"), "the default is not written: {yaml}");
        assert!(serde_yaml::from_str::<LoadSpec>("{maxUsers: 1, colour: red}").is_err());
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(field_of("{maxUsers: 10, spawnRate: -1}"), "spawnRate");
        assert_eq!(field_of("{maxUsers: 10, stopRate: 0}"), "stopRate");
        assert_eq!(field_of("{spawnRate: 5}"), "maxUsers");
        assert_eq!(field_of("{maxUsers: -1}"), "maxUsers");
        assert_eq!(
            field_of("{maxUsers: 10, startAt: 60, stopAt: 60}"),
            "stopAt"
        );
        assert_eq!(
            field_of("{maxUsers: 10, connsPerUser: .nan}"),
            "connsPerUser"
        );
        assert_eq!(
            field_of("{series: [{at: 10, users: 1}, {at: 5, users: 2}]}"),
            "series[1].at"
        );
        assert_eq!(field_of("{series: [], maxUsers: 3}"), "maxUsers");
        assert_eq!(field_of("{series: []}"), "series");
        parse("{maxUsers: 10, startAt: 60, stopAt: 61}")
            .validate()
            .unwrap();
    }

    #[test]
    fn users_follow_the_ramp_or_the_series() {
        let ramp = LoadSpec::seed().users();
        assert_eq!(ramp.value_at(100.0), 500.0);
        assert_eq!(ramp.value_at(1320.0), 0.0);
        let series = parse("{series: [{at: 0, users: 50}, {at: 600, users: 400}]}").users();
        assert_eq!(series.value_at(599.0), 50.0);
        assert_eq!(series.value_at(600.0), 400.0);
        assert_eq!(LoadSpec::constant(7.0).users().value_at(0.0), 7.0);
    }
}
