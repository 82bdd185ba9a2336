//! LiteLLM's request fields that Gatehouse's own API does not have, decided one by one: a
//! field that changes nothing a limit depends on is accepted and ignored; one whose absence
//! would loosen a limit or surprise its sender is refused with a message naming what to do
//! instead. Only fields a route does not know come here; the README lists the same table.

/// What happens to a LiteLLM field a route does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Accepted and ignored: it changes nothing Gatehouse enforces.
    Ignore,
    /// Refused (400, `param` naming the field) with this message.
    Refuse(&'static str),
}

const PER_MODEL: &str = "per-model budgets and limits are not supported: give the key only the \
                         models it needs (models), or one key per model with its own \
                         max_budget, rpm_limit and tpm_limit";

/// The decision for a field a route's body does not have; `None` for a field LiteLLM does not
/// have either (refused as unknown).
pub fn decision(field: &str) -> Option<Decision> {
    use Decision::{Ignore, Refuse};
    Some(match field {
        // Notifications, labels and settings with no effect on what is allowed or charged.
        "send_invite_email"
        | "tags"
        | "config"
        | "key_type"
        | "allowed_cache_controls"
        | "prompts"
        | "team_member_permissions" => Ignore,
        "spend" => Refuse(
            "spend is counted by the gateway and cannot be set: raise max_budget, or set a \
             budget_duration so that it resets",
        ),
        "model_max_budget" | "model_rpm_limit" | "model_tpm_limit" => Refuse(PER_MODEL),
        "budget_id" => Refuse(
            "named budgets are not supported: set max_budget, budget_duration, tpm_limit and \
             rpm_limit on the key or team itself",
        ),
        "guardrails" => Refuse("guardrails are not run by Gatehouse; run them upstream"),
        "permissions" | "allowed_routes" | "allowed_passthrough_routes" | "object_permission" => {
            Refuse(
                "route and object permissions are not supported: a virtual key reaches the \
                 proxy routes only, within its models",
            )
        }
        "enforced_params" => Refuse("enforced_params is not supported"),
        "rpm_limit_type" | "tpm_limit_type" => Refuse(
            "limits are always enforced exactly (LiteLLM's guaranteed_throughput); leave this \
             field out",
        ),
        "auto_rotate" | "rotation_interval" => {
            Refuse("automatic key rotation is not supported: issue a new key and delete the old")
        }
        "router_settings" => Refuse("router settings are set in the config file only"),
        "max_budget_in_organization" => Refuse(
            "an organization's members have no budget of their own here: the organization's \
             budget holds over its teams; give the user a team membership with \
             max_budget_in_team",
        ),
        "members" | "admins" => {
            Refuse("name a team's members and their roles in members_with_roles")
        }
        "team_member_budget"
        | "team_member_budget_duration"
        | "team_member_rpm_limit"
        | "team_member_tpm_limit"
        | "team_member_key_duration" => Refuse(
            "a member's budget and limits are set per member: max_budget_in_team, tpm_limit \
             and rpm_limit on /team/member_add or /team/member_update",
        ),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_never_ignored() {
        for field in [
            "spend",
            "model_max_budget",
            "model_rpm_limit",
            "rpm_limit_type",
            "budget_id",
            "guardrails",
            "allowed_routes",
            "max_budget_in_organization",
            "team_member_budget",
        ] {
            assert!(
                matches!(decision(field), Some(Decision::Refuse(_))),
                "{field}"
            );
        }
        assert_eq!(decision("tags"), Some(Decision::Ignore));
        assert_eq!(decision("no_such_field"), None);
    }
}
