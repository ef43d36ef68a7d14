//! Condition types, condition reasons, and event reasons with their types and actions.
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
        /// `spec.dryRun` is true: everything is computed and published, `/scale` is never
        /// written.
        DryRun,
        /// The target is at 0 replicas and no metric is above its `activationValue`.
        ScaledToZero,
        /// `spec.controllerRef` names an AviController that does not exist.
        ControllerNotFound,
        /// The AviController's `namespaceSelector` does not select the autoscaler's namespace.
        ControllerNotAllowed,
        /// The AviController is not Ready (the message carries its own reason).
        ControllerNotReady,
        /// `spec.controller` (an inline connection) is used, but the operator runs without
        /// `--allow-inline-controllers`.
        InlineControllerNotAllowed,
        /// The inline connection's Secret lacks the label
        /// `autoscaling.avi.dev/credentials: "true"`, so its data is not read.
        SecretNotAllowed,
        /// The inline connection's endpoint is outside `--allowed-endpoints`, or needs
        /// `--allow-insecure-inline`.
        EndpointNotAllowed,
        /// An answer from the controller exceeded a size limit (`--avi-max-response-bytes`, or the
        /// limits on lines, series and labels); nothing was decided on the partial answer.
        AviResponseTooLarge,
        /// The TLS handshake with the controller failed (unknown CA, wrong name, expired).
        AviTLSError,
        /// AviController Ready: logged in and read the controller's version.
        Connected,
        /// Another, older AviAutoscaler manages the same target; this one holds.
        AmbiguousTarget,
        /// A HorizontalPodAutoscaler manages the same target; this autoscaler holds.
        ConflictingHorizontalPodAutoscaler,
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
        /// Normal: the target left 0 replicas because a metric rose above its
        /// `activationValue`.
        Activated,
        /// Normal: in dry run, the replica count the operator would set changed.
        DryRunRescale,
        /// Warning: the target's replica count changed under the operator between its read and
        /// its write more than once in a row.
        ScaleConflict,
        /// Warning: `spec.controllerRef` names no AviController.
        ControllerNotFound,
        /// Warning: the AviController does not allow this namespace.
        ControllerNotAllowed,
        /// Warning: the AviController is not Ready.
        ControllerNotReady,
        /// Warning: inline connections are not allowed by the operator.
        InlineControllerNotAllowed,
        /// Warning: the inline connection's Secret is not labelled for use.
        SecretNotAllowed,
        /// Warning: the inline connection's endpoint is not allowed.
        EndpointNotAllowed,
        /// Warning: an answer from the controller exceeded a size limit.
        AviResponseTooLarge,
        /// Warning: the TLS handshake with the controller failed.
        AviTLSError,
        /// Normal: an AviController became Ready (logged in and read the controller's version).
        Connected,
        /// Warning: another AviAutoscaler manages the same target.
        AmbiguousTarget,
        /// Warning: a HorizontalPodAutoscaler manages the same target.
        ConflictingHorizontalPodAutoscaler,
    }
}

string_enum! {
    /// The type of an Event, as the Events API spells it.
    EventType {
        /// Something expected happened.
        Normal,
        /// Something needs attention.
        Warning,
    }
}

string_enum! {
    /// The Events API `action` of an event: what the operator was doing when it happened.
    EventAction {
        /// Writing the target's replica count.
        Scale,
        /// Reading the target's scale subresource.
        GetScale,
        /// Reading the metrics and computing a replica count from them.
        ComputeReplicas,
        /// Honouring `spec.paused`.
        Pause,
        /// Writing the AviAutoscaler's status.
        UpdateStatus,
        /// Probing an AviController (login and version read).
        Probe,
    }
}

impl EventReason {
    /// The type and the action of every event with this reason. Listing each reason here
    /// (no catch-all) makes a new reason a compile error until it has both.
    pub const fn type_and_action(self) -> (EventType, EventAction) {
        use EventAction::*;
        use EventType::*;
        match self {
            Self::SuccessfulRescale => (Normal, Scale),
            Self::FailedRescale => (Warning, Scale),
            Self::FailedGetScale => (Warning, GetScale),
            Self::FailedComputeMetricsReplicas => (Warning, ComputeReplicas),
            Self::FailedGetAviMetric => (Warning, ComputeReplicas),
            Self::AviAuthFailed => (Warning, ComputeReplicas),
            Self::AviUnreachable => (Warning, ComputeReplicas),
            Self::SecretNotFound => (Warning, ComputeReplicas),
            Self::SecretForbidden => (Warning, ComputeReplicas),
            Self::InvalidSpec => (Warning, ComputeReplicas),
            Self::FallbackActive => (Warning, ComputeReplicas),
            Self::FallbackCleared => (Normal, ComputeReplicas),
            Self::Paused => (Normal, Pause),
            Self::Resumed => (Normal, Pause),
            Self::FailedUpdateStatus => (Warning, UpdateStatus),
            Self::Activated => (Normal, Scale),
            Self::DryRunRescale => (Normal, Scale),
            Self::ScaleConflict => (Warning, Scale),
            Self::ControllerNotFound => (Warning, ComputeReplicas),
            Self::ControllerNotAllowed => (Warning, ComputeReplicas),
            Self::ControllerNotReady => (Warning, ComputeReplicas),
            Self::InlineControllerNotAllowed => (Warning, ComputeReplicas),
            Self::SecretNotAllowed => (Warning, ComputeReplicas),
            Self::EndpointNotAllowed => (Warning, ComputeReplicas),
            Self::AviResponseTooLarge => (Warning, ComputeReplicas),
            Self::AviTLSError => (Warning, ComputeReplicas),
            Self::Connected => (Normal, Probe),
            Self::AmbiguousTarget => (Warning, Scale),
            Self::ConflictingHorizontalPodAutoscaler => (Warning, Scale),
        }
    }

    /// Normal or Warning.
    pub const fn event_type(self) -> EventType {
        self.type_and_action().0
    }

    /// What the operator was doing when an event with this reason happened.
    pub const fn action(self) -> EventAction {
        self.type_and_action().1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_reason_has_its_documented_type_and_an_action() {
        // The types the variants' doc comments promise, spelled out once more so that a
        // changed mapping fails here.
        let expected = [
            ("SuccessfulRescale", "Normal", "Scale"),
            ("FailedRescale", "Warning", "Scale"),
            ("FailedGetScale", "Warning", "GetScale"),
            ("FailedComputeMetricsReplicas", "Warning", "ComputeReplicas"),
            ("FailedGetAviMetric", "Warning", "ComputeReplicas"),
            ("AviAuthFailed", "Warning", "ComputeReplicas"),
            ("AviUnreachable", "Warning", "ComputeReplicas"),
            ("SecretNotFound", "Warning", "ComputeReplicas"),
            ("SecretForbidden", "Warning", "ComputeReplicas"),
            ("InvalidSpec", "Warning", "ComputeReplicas"),
            ("FallbackActive", "Warning", "ComputeReplicas"),
            ("FallbackCleared", "Normal", "ComputeReplicas"),
            ("Paused", "Normal", "Pause"),
            ("Resumed", "Normal", "Pause"),
            ("FailedUpdateStatus", "Warning", "UpdateStatus"),
            ("Activated", "Normal", "Scale"),
            ("DryRunRescale", "Normal", "Scale"),
            ("ScaleConflict", "Warning", "Scale"),
            ("ControllerNotFound", "Warning", "ComputeReplicas"),
            ("ControllerNotAllowed", "Warning", "ComputeReplicas"),
            ("ControllerNotReady", "Warning", "ComputeReplicas"),
            ("InlineControllerNotAllowed", "Warning", "ComputeReplicas"),
            ("SecretNotAllowed", "Warning", "ComputeReplicas"),
            ("EndpointNotAllowed", "Warning", "ComputeReplicas"),
            ("AviResponseTooLarge", "Warning", "ComputeReplicas"),
            ("AviTLSError", "Warning", "ComputeReplicas"),
            ("Connected", "Normal", "Probe"),
            ("AmbiguousTarget", "Warning", "Scale"),
            ("ConflictingHorizontalPodAutoscaler", "Warning", "Scale"),
        ];
        let actual: Vec<(&str, &str, &str)> = EventReason::ALL
            .iter()
            .map(|r| (r.as_str(), r.event_type().as_str(), r.action().as_str()))
            .collect();
        assert_eq!(actual, expected);
    }

    #[test]
    fn every_action_is_used() {
        for action in EventAction::ALL {
            assert!(
                EventReason::ALL.iter().any(|r| r.action() == *action),
                "{action} is the action of no event reason"
            );
        }
    }
}
