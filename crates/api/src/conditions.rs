//! Condition types, condition reasons and event reasons.
//!
//! The HorizontalPodAutoscaler's names are kept verbatim (users and tools match on them);
//! the Avi-specific ones are added. Each serialises to exactly the string shown.

use std::fmt;

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The exact string used in the API.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => stringify!($variant)),+
                }
            }

            /// Parses the exact API string.
            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::parse(&s).ok_or_else(|| {
                    serde::de::Error::custom(format!("unknown {}: {s}", stringify!($name)))
                })
            }
        }
    };
}

string_enum! {
    /// The condition types of an AviAutoscaler.
    ConditionType {
        /// Whether the target's scale can be read and written, and whether stabilization holds
        /// the recommendation back.
        AbleToScale,
        /// Whether a replica count could be computed from the metrics.
        ScalingActive,
        /// Whether min/max or a rate policy limited the replica count.
        ScalingLimited,
        /// A summary: True when the autoscaler is reading its metrics and managing its target.
        Ready,
    }
}

string_enum! {
    /// Condition reasons: the HorizontalPodAutoscaler's, then the Avi-specific ones.
    Reason {
        // AbleToScale (HorizontalPodAutoscaler)
        /// The target's scale subresource was read.
        SucceededGetScale,
        /// The target's scale subresource could not be read (missing target, no scale
        /// subresource, unknown kind).
        FailedGetScale,
        /// The recommendation is applied as it is.
        ReadyForNewScale,
        /// A scale-up is held to the lowest recommendation of the scale-up window.
        ScaleUpStabilized,
        /// A scale-down is held to the highest recommendation of the scale-down window.
        ScaleDownStabilized,
        /// The target's replica count was changed.
        SucceededRescale,
        /// Writing the target's replica count failed.
        FailedUpdateScale,
        // ScalingActive (HorizontalPodAutoscaler)
        /// A replica count was computed from at least one metric.
        ValidMetricFound,
        /// The target has 0 replicas: scaling is off until someone scales it up by hand.
        ScalingDisabled,
        // ScalingLimited (HorizontalPodAutoscaler)
        /// The recommendation was within min/max and the rate policies.
        DesiredWithinRange,
        /// The recommendation was capped at maxReplicas.
        TooManyReplicas,
        /// The recommendation was raised to minReplicas.
        TooFewReplicas,
        /// A scale-up policy (or the 2×/4 cap without behavior) limited the step.
        ScaleUpLimit,
        /// A scale-down policy limited the step.
        ScaleDownLimit,
        // Avi-specific
        /// A metric could not be read from the controller (unknown entity or metric, empty or
        /// malformed answer).
        FailedGetAviMetric,
        /// The controller refused the credentials.
        AviAuthFailed,
        /// No endpoint of the controller could be reached (connection, TLS, timeout, 5xx).
        AviUnreachable,
        /// The credentials Secret (or the CA Secret) is missing or lacks a key.
        SecretNotFound,
        /// The operator may not read the credentials Secret (or the CA Secret): the API server
        /// answered 403.
        SecretForbidden,
        /// The spec cannot be used as it is (the message says which field and why).
        InvalidSpec,
        /// The metrics could not be read for `fallback.failureThreshold` polls in a row, so the
        /// fallback replica count applies.
        FallbackActive,
        /// `spec.paused` is true.
        Paused,
        /// A further step in the direction of the last scale waits for a sample from a newer Avi
        /// aggregation bucket.
        WaitingForFreshSample,
        /// Ready: the autoscaler reads its metrics and manages its target.
        Active,
    }
}

string_enum! {
    /// Event reasons.
    EventReason {
        /// Normal: the target's replica count was changed.
        SuccessfulRescale,
        /// Warning: writing the target's replica count failed.
        FailedRescale,
        /// Warning: the target's scale subresource could not be read.
        FailedGetScale,
        /// Warning: no replica count could be computed from the metrics.
        FailedComputeMetricsReplicas,
        /// Warning: a metric could not be read from the controller.
        FailedGetAviMetric,
        /// Warning: the controller refused the credentials.
        AviAuthFailed,
        /// Warning: the controller could not be reached.
        AviUnreachable,
        /// Warning: the credentials or CA Secret is missing or incomplete.
        SecretNotFound,
        /// Warning: the operator may not read the credentials or CA Secret.
        SecretForbidden,
        /// Warning: the spec cannot be used.
        InvalidSpec,
        /// Warning: the fallback replica count was applied.
        FallbackActive,
        /// Normal: the metrics can be read again after the fallback applied.
        FallbackCleared,
        /// Normal: `spec.paused` was set.
        Paused,
        /// Normal: `spec.paused` was cleared.
        Resumed,
        /// Warning: the status could not be written.
        FailedUpdateStatus,
    }
}
