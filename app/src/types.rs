//! The JSON shapes of Gatehouse's REST API: what the server sends and accepts, and what the
//! browser client reads. Money is USD as a JSON number here; the server keeps it as integers.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Model aliases: a name a caller may ask for, to the model served for it.
pub type Aliases = BTreeMap<String, String>;

/// Free-form JSON object attached to a team or key.
pub type Metadata = Map<String, Value>;

/// Tells "field absent" (outer `None`: leave unchanged) from "field is null" (`Some(None)`:
/// clear it) in partial updates.
fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A level's budget and limits as every endpoint shows them (teams, keys, and the levels to
/// come): one shape, flattened into each level's answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Budget {
    pub max_budget: Option<f64>,
    /// Spend past which an alert is sent; nothing is refused for it (LiteLLM's).
    #[serde(default)]
    pub soft_budget: Option<f64>,
    /// Spent in the current window, USD.
    pub spend: f64,
    pub tpm_limit: Option<u64>,
    pub rpm_limit: Option<u64>,
    /// Requests in flight at once (LiteLLM's name); past it, 429.
    pub max_parallel_requests: Option<u64>,
    pub budget_duration: Option<String>,
    /// When spend next returns to zero (RFC 3339, UTC); null when the budget never resets.
    pub budget_reset_at: Option<String>,
}

/// The budget fields a level is created with.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewBudget {
    pub max_budget: Option<f64>,
    pub soft_budget: Option<f64>,
    pub tpm_limit: Option<u64>,
    pub rpm_limit: Option<u64>,
    pub max_parallel_requests: Option<u64>,
    pub budget_duration: Option<String>,
}

/// The budget fields a level's update changes: outer `None` leaves one as it is, `Some(None)`
/// clears it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BudgetUpdate {
    pub max_budget: Option<Option<f64>>,
    pub soft_budget: Option<Option<f64>>,
    pub tpm_limit: Option<Option<u64>>,
    pub rpm_limit: Option<Option<u64>>,
    pub max_parallel_requests: Option<Option<u64>>,
    pub budget_duration: Option<Option<String>>,
}

/// Adds the budget fields to a level's request type, flat (so a wrongly typed one is still
/// named in the error), and `budget()` to read them as one [`NewBudget`] or [`BudgetUpdate`].
/// A new limit is declared here once for every level.
macro_rules! budget_fields {
    (new $(max_budget = $rename:literal)?: $(#[$meta:meta])* pub struct $name:ident { $($body:tt)* }) => {
        $(#[$meta])*
        pub struct $name {
            $($body)*
            $(#[serde(rename = $rename)])?
            pub max_budget: Option<f64>,
            /// Spend past which an alert is sent; nothing is refused for it.
            #[serde(default)]
            pub soft_budget: Option<f64>,
            pub tpm_limit: Option<u64>,
            pub rpm_limit: Option<u64>,
            /// Requests in flight at once; past it, 429.
            pub max_parallel_requests: Option<u64>,
            /// How often the budget resets, e.g. `30d`; null or absent: never.
            pub budget_duration: Option<String>,
        }

        impl $name {
            pub fn budget(&self) -> NewBudget {
                NewBudget {
                    max_budget: self.max_budget,
                    soft_budget: self.soft_budget,
                    tpm_limit: self.tpm_limit,
                    rpm_limit: self.rpm_limit,
                    max_parallel_requests: self.max_parallel_requests,
                    budget_duration: self.budget_duration.clone(),
                }
            }
        }
    };
    (update $(max_budget = $rename:literal)?: $(#[$meta:meta])* pub struct $name:ident { $($body:tt)* }) => {
        $(#[$meta])*
        pub struct $name {
            $($body)*
            #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
            $(#[serde(rename = $rename)])?
            pub max_budget: Option<Option<f64>>,
            #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
            pub soft_budget: Option<Option<f64>>,
            #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
            pub tpm_limit: Option<Option<u64>>,
            #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
            pub rpm_limit: Option<Option<u64>>,
            #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
            pub max_parallel_requests: Option<Option<u64>>,
            #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
            pub budget_duration: Option<Option<String>>,
        }

        impl $name {
            pub fn budget(&self) -> BudgetUpdate {
                BudgetUpdate {
                    max_budget: self.max_budget,
                    soft_budget: self.soft_budget,
                    tpm_limit: self.tpm_limit,
                    rpm_limit: self.rpm_limit,
                    max_parallel_requests: self.max_parallel_requests,
                    budget_duration: self.budget_duration.clone(),
                }
            }
        }
    };
}

/// A team as every endpoint returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Team {
    pub team_id: String,
    pub team_alias: Option<String>,
    /// The organization whose budget, limits and models bound the team's.
    pub organization_id: Option<String>,
    /// Models the team may use; empty means every configured model.
    pub models: Vec<String>,
    /// A name the team's callers may ask for, to the model served for it (LiteLLM's).
    pub model_aliases: Aliases,
    #[serde(flatten)]
    pub budget: Budget,
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub metadata: Metadata,
    pub blocked: bool,
    /// The team's members and their roles there (LiteLLM's).
    pub members_with_roles: Vec<MemberRole>,
    /// Where the team's budget alerts go too; shown to proxy admins and viewers only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_webhook_url: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A member as LiteLLM's `members_with_roles` lists it, and as `/team/member_add`,
/// `/team/new` and `/team/update` take one: `user_id` or `user_email` names the user (made an
/// `internal_user` when new); `role` is `admin` or `user` (the default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MemberRole {
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub user_email: Option<String>,
    #[serde(default = "member_role")]
    pub role: String,
}

fn member_role() -> String {
    "user".to_string()
}

/// One object or a list of them, read so that a mistake inside one is named (an untagged
/// enum would only say that nothing matched).
fn one_or_many<'de, D, T>(deserializer: D, what: &str) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    use serde::de::Error;
    match Value::deserialize(deserializer)? {
        Value::Array(items) => items
            .into_iter()
            .map(|item| serde_json::from_value(item).map_err(D::Error::custom))
            .collect(),
        one @ Value::Object(_) => serde_json::from_value(one)
            .map(|one| vec![one])
            .map_err(D::Error::custom),
        _ => Err(D::Error::custom(format!(
            "{what} is one member object or a list of them"
        ))),
    }
}

/// One member or a list of them (`/team/member_add`'s `member`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum Members {
    One(MemberRole),
    Many(Vec<MemberRole>),
}

impl Members {
    pub fn into_vec(self) -> Vec<MemberRole> {
        match self {
            Self::One(one) => vec![one],
            Self::Many(many) => many,
        }
    }
}

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        one_or_many(deserializer, "member").map(Self::Many)
    }
}

/// A user's membership of a team: the role there, and the budget, limits and models over the
/// user's keys in the team. LiteLLM's fields, with its `litellm_budget_table` as well.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TeamMembership {
    pub team_id: String,
    pub user_id: String,
    pub user_email: Option<String>,
    pub role: String,
    /// Models the user may use in this team, within the team's; empty: all of the team's.
    pub allowed_models: Vec<String>,
    pub max_budget_in_team: Option<f64>,
    pub spend: f64,
    pub tpm_limit: Option<u64>,
    pub rpm_limit: Option<u64>,
    pub max_parallel_requests: Option<u64>,
    pub budget_duration: Option<String>,
    pub budget_reset_at: Option<String>,
    pub litellm_budget_table: Budget,
}

budget_fields! {
    new max_budget = "max_budget_in_team":
    /// `POST /team/member_add`: the members, and the budget and limits each gets in the team.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    #[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
    #[serde(deny_unknown_fields)]
    pub struct MemberAdd {
        pub team_id: String,
        pub member: Members,
        pub allowed_models: Option<Vec<String>>,
    }
}

/// `POST /team/member_add` answers with the team (members included) and what changed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MembersAdded {
    #[serde(flatten)]
    pub team: Team,
    /// The users added (made when new).
    pub updated_users: Vec<User>,
    pub updated_team_memberships: Vec<TeamMembership>,
}

budget_fields! {
    update max_budget = "max_budget_in_team":
    /// `POST /team/member_update`: `user_id` or `user_email` names the member; only the other
    /// fields present change; `null` clears a limit.
    #[derive(Debug, Clone, Default, Serialize, Deserialize)]
    #[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
    #[serde(deny_unknown_fields)]
    pub struct MemberUpdate {
        pub team_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub user_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub user_email: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub role: Option<String>,
        #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
        pub allowed_models: Option<Option<Vec<String>>>,
    }
}

/// `POST /team/member_delete`: `user_id` or `user_email` names the member.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MemberDelete {
    pub team_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_email: Option<String>,
}

/// `POST /team/member_delete` answers with the team as it is now, and the member's keys in
/// the team, which went with the membership.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MemberDeleted {
    #[serde(flatten)]
    pub team: Team,
    pub deleted_keys: Vec<String>,
}

budget_fields! {
    new:
    /// `POST /team/new`.
    #[derive(Debug, Clone, Default, Serialize, Deserialize)]
    #[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
    #[serde(deny_unknown_fields)]
    pub struct NewTeam {
        /// Generated (a UUID) when absent.
        pub team_id: Option<String>,
        pub team_alias: Option<String>,
        /// The organization the team belongs to: its models, budget and limits must lie within
        /// the organization's.
        pub organization_id: Option<String>,
        pub models: Option<Vec<String>>,
        pub model_aliases: Option<Aliases>,
        #[cfg_attr(feature = "ssr", schema(value_type = Option<Object>))]
        pub metadata: Option<Metadata>,
        pub blocked: Option<bool>,
        /// Members to add with the team (LiteLLM's).
        pub members_with_roles: Option<Vec<MemberRole>>,
        /// Where the team's budget alerts go too (proxy admins set it; a host the operator
        /// allows).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub alert_webhook_url: Option<String>,
    }
}

budget_fields! {
    update:
    /// `POST /team/update`: only the fields present change; `null` clears a field.
    #[derive(Debug, Clone, Default, Serialize, Deserialize)]
    #[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
    #[serde(deny_unknown_fields)]
    pub struct TeamUpdate {
        pub team_id: String,
        #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
        pub team_alias: Option<Option<String>>,
        /// Moves the team into an organization (`null`: out of it).
        #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
        pub organization_id: Option<Option<String>>,
        #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
        pub models: Option<Option<Vec<String>>>,
        #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
        pub model_aliases: Option<Option<Aliases>>,
        #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ssr", schema(value_type = Option<Object>))]
        pub metadata: Option<Option<Metadata>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub blocked: Option<bool>,
        /// The team's members from now on: those not there are added, roles are set; a member
        /// left out is removed, unless they still hold keys in the team (then nothing changes:
        /// `/team/member_delete` removes a member with their keys).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub members_with_roles: Option<Vec<MemberRole>>,
        /// Where the team's budget alerts go too (`null`: only the operator's webhook).
        #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
        pub alert_webhook_url: Option<Option<String>>,
    }
}

/// `POST /team/update` answers with the team's fields and, as LiteLLM does, the same row
/// under `data`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TeamUpdated {
    #[serde(flatten)]
    pub team: Team,
    pub data: Team,
}

/// An organization as every `/organization/*` endpoint shows it (LiteLLM's fields): a budget,
/// limits and models over all of its teams, its members and its teams.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Organization {
    pub organization_id: String,
    pub organization_alias: Option<String>,
    /// Models its teams may use; empty means every model.
    pub models: Vec<String>,
    #[serde(flatten)]
    pub budget: Budget,
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub metadata: Metadata,
    /// LiteLLM's name for the same budget and limits.
    pub litellm_budget_table: Budget,
    pub members: Vec<OrgMembership>,
    pub teams: Vec<Team>,
    pub created_at: String,
    pub updated_at: String,
}

/// A user in an organization, with a role there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct OrgMembership {
    pub organization_id: String,
    pub user_id: String,
    pub user_email: Option<String>,
    /// `org_admin`, `internal_user` or `internal_user_viewer`.
    pub user_role: String,
    pub created_at: String,
    pub updated_at: String,
}

budget_fields! {
    new:
    /// `POST /organization/new`.
    #[derive(Debug, Clone, Default, Serialize, Deserialize)]
    #[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
    #[serde(deny_unknown_fields)]
    pub struct NewOrganization {
        /// Generated (a UUID) when absent.
        pub organization_id: Option<String>,
        pub organization_alias: Option<String>,
        pub models: Option<Vec<String>>,
        #[cfg_attr(feature = "ssr", schema(value_type = Option<Object>))]
        pub metadata: Option<Metadata>,
    }
}

budget_fields! {
    update:
    /// `PATCH /organization/update`: only the fields present change; `null` clears a field.
    #[derive(Debug, Clone, Default, Serialize, Deserialize)]
    #[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
    #[serde(deny_unknown_fields)]
    pub struct OrganizationUpdate {
        pub organization_id: String,
        #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
        pub organization_alias: Option<Option<String>>,
        #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
        pub models: Option<Option<Vec<String>>>,
        #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ssr", schema(value_type = Option<Object>))]
        pub metadata: Option<Option<Metadata>>,
    }
}

/// `GET /organization/info` query.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct OrganizationInfoQuery {
    pub organization_id: String,
}

/// `DELETE /organization/delete`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct OrganizationDelete {
    pub organization_ids: Vec<String>,
}

/// A user named in `/organization/member_add`: `user_id` or `user_email`, and a role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct OrgMemberRole {
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub user_email: Option<String>,
    /// `org_admin`, `internal_user` (the default) or `internal_user_viewer`.
    #[serde(default = "org_member_role")]
    pub role: String,
}

fn org_member_role() -> String {
    "internal_user".to_string()
}

/// One organization member or a list of them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum OrgMembers {
    One(OrgMemberRole),
    Many(Vec<OrgMemberRole>),
}

impl OrgMembers {
    pub fn into_vec(self) -> Vec<OrgMemberRole> {
        match self {
            Self::One(one) => vec![one],
            Self::Many(many) => many,
        }
    }
}

impl<'de> Deserialize<'de> for OrgMembers {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        one_or_many(deserializer, "member").map(Self::Many)
    }
}

/// `POST /organization/member_add`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct OrgMemberAdd {
    pub organization_id: String,
    pub member: OrgMembers,
}

/// `POST /organization/member_add` answers with what changed (LiteLLM's shape).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct OrgMembersAdded {
    pub organization_id: String,
    pub updated_users: Vec<User>,
    pub updated_organization_memberships: Vec<OrgMembership>,
}

/// `{"team_id": ...}` for `/team/block` and `/team/unblock`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TeamRef {
    pub team_id: String,
}

/// `GET /team/events` query: the teams and keys to follow (100 of each at most, one at least).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct TeamEventsQuery {
    /// Teams by id, comma-separated.
    pub team_ids: Option<String>,
    /// Keys by token, comma-separated.
    pub keys: Option<String>,
}

/// What a live stream tells of a team or key: spend in the current window (USD, across every
/// instance), budget, next reset and block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LiveFigures {
    pub spend: f64,
    pub max_budget: Option<f64>,
    pub budget_reset_at: Option<String>,
    pub blocked: bool,
}

impl LiveFigures {
    /// The figures an answer already holds.
    pub fn of(budget: &Budget, blocked: bool) -> Self {
        Self {
            spend: budget.spend,
            max_budget: budget.max_budget,
            budget_reset_at: budget.budget_reset_at.clone(),
            blocked,
        }
    }
}

/// A team's live figures: each `budgets` event of `GET /team/events` is a list of these, for
/// the followed teams whose figures changed (the first event: all of them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TeamFigures {
    pub team_id: String,
    #[serde(flatten)]
    pub figures: LiveFigures,
}

/// A key's live figures: each `keys` event of `GET /team/events` is a list of these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct KeyFigures {
    pub token: String,
    #[serde(flatten)]
    pub figures: LiveFigures,
}

/// `GET /team/info` query.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
pub struct TeamInfoQuery {
    pub team_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TeamDelete {
    pub team_ids: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TeamsDeleted {
    pub deleted_teams: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TeamList {
    pub teams: Vec<Team>,
    /// Only when the list was asked for by page (`page`, `size`, `sort` or `search`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_page: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_pages: Option<u64>,
}

/// `GET /team/list` query. Without any field the answer is the spec's: every team, oldest
/// first. With any of them it is one page (`size` 10 by default, at most 100) of the teams whose
/// id or alias contains `search` (ignoring case), in `sort` order: `name`, `spend`, `used`
/// (share of the budget spent), `reset` (next budget reset) or `created`, each ascending, or
/// descending with a leading `-` (`-spend`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct TeamListQuery {
    /// 1-based.
    pub page: Option<u64>,
    pub size: Option<u64>,
    pub sort: Option<String>,
    pub search: Option<String>,
}

impl TeamListQuery {
    pub fn is_paged(&self) -> bool {
        *self != Self::default()
    }
}

/// One key of a team, or a member without a key, as `/team/info` lists them under `members`
/// (the spec's `{user_id, key}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TeamMember {
    pub user_id: Option<String>,
    /// The masked key, e.g. `sk-3fk2a9x0qz1m...Xy7Q` (the full key is never shown again);
    /// null for a member who holds no key in the team.
    pub key: Option<String>,
    pub token: Option<String>,
    pub key_alias: Option<String>,
    pub blocked: bool,
    /// The user's role in the team; null for a key without a user.
    pub role: Option<String>,
}

/// `GET /team/info`: the team's fields at the top level (the spec) plus LiteLLM's
/// `team_info` and `keys`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TeamInfo {
    #[serde(flatten)]
    pub team: Team,
    pub members: Vec<TeamMember>,
    pub team_info: Team,
    pub keys: Vec<KeyInfo>,
    /// Each member's role, budget, limits and models in the team (LiteLLM's).
    pub team_memberships: Vec<TeamMembership>,
}

/// A virtual key as every endpoint but `/key/generate` returns it: never the secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct KeyInfo {
    /// The key's public id; accepted wherever an endpoint takes a key.
    pub token: String,
    /// The masked key.
    pub key_name: String,
    pub key_alias: Option<String>,
    pub team_id: String,
    pub user_id: Option<String>,
    /// Models the key may use, within its team's; empty means all of the team's.
    pub models: Vec<String>,
    /// A name the key may ask for, to the model served for it (LiteLLM's).
    pub aliases: Aliases,
    #[serde(flatten)]
    pub budget: Budget,
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub metadata: Metadata,
    pub blocked: bool,
    /// Expiry (RFC 3339, UTC); null when the key never expires.
    pub expires: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

budget_fields! {
    new:
    /// `POST /key/generate`.
    #[derive(Debug, Clone, Default, Serialize, Deserialize)]
    #[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
    #[serde(deny_unknown_fields)]
    pub struct NewKey {
        pub team_id: Option<String>,
        pub user_id: Option<String>,
        pub models: Option<Vec<String>>,
        pub aliases: Option<Aliases>,
        /// How long the key lives, e.g. `30d`; null or absent: forever.
        pub duration: Option<String>,
        pub key_alias: Option<String>,
        #[cfg_attr(feature = "ssr", schema(value_type = Option<Object>))]
        pub metadata: Option<Metadata>,
        pub blocked: Option<bool>,
    }
}

/// `POST /key/generate` answers with the secret key, this once.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct GeneratedKey {
    pub key: String,
    /// The key's SHA-256 in hex, LiteLLM's `token_id`: it names the key in later calls.
    pub token_id: String,
    #[serde(flatten)]
    pub info: KeyInfo,
}

budget_fields! {
    update:
    /// `POST /key/update`: `key` names the key (the secret or its `token`); only the other
    /// fields present change; `null` clears a field.
    #[derive(Debug, Clone, Default, Serialize, Deserialize)]
    #[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
    #[serde(deny_unknown_fields)]
    pub struct KeyUpdate {
        pub key: String,
        #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
        pub key_alias: Option<Option<String>>,
        #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
        pub user_id: Option<Option<String>>,
        #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
        pub models: Option<Option<Vec<String>>>,
        #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
        pub aliases: Option<Option<Aliases>>,
        /// A new lifetime counted from now; null: never expires.
        #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
        pub duration: Option<Option<String>>,
        #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ssr", schema(value_type = Option<Object>))]
        pub metadata: Option<Option<Metadata>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub blocked: Option<bool>,
    }
}

/// A user as every `/user/*` endpoint shows it (LiteLLM's fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct User {
    pub user_id: String,
    pub user_alias: Option<String>,
    pub user_email: Option<String>,
    /// `proxy_admin`, `proxy_admin_viewer`, `internal_user` or `internal_user_viewer`.
    pub user_role: String,
    /// Models the user's keys may use; empty means every model their teams allow.
    pub models: Vec<String>,
    #[serde(flatten)]
    pub budget: Budget,
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub metadata: Metadata,
    /// The teams the user is a member of.
    pub teams: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

budget_fields! {
    new:
    /// `POST /user/new`.
    #[derive(Debug, Clone, Default, Serialize, Deserialize)]
    #[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
    #[serde(deny_unknown_fields)]
    pub struct NewUser {
        /// Generated (a UUID) when absent.
        pub user_id: Option<String>,
        pub user_alias: Option<String>,
        pub user_email: Option<String>,
        /// Default `internal_user`.
        pub user_role: Option<String>,
        pub models: Option<Vec<String>>,
        #[cfg_attr(feature = "ssr", schema(value_type = Option<Object>))]
        pub metadata: Option<Metadata>,
        /// Teams the user joins (as a `user` member); the first one gets the key.
        pub teams: Option<Vec<String>>,
        /// LiteLLM's deprecated single team: used when `teams` is absent.
        pub team_id: Option<String>,
        /// Issue a key in the first team (default true).
        pub auto_create_key: Option<bool>,
        /// The key's alias and lifetime, as on `/key/generate`.
        pub key_alias: Option<String>,
        pub duration: Option<String>,
    }
}

/// `POST /user/new` answers with the user and, when a key was issued, its secret (this once).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UserCreated {
    /// The key's secret; null when no key was issued (`auto_create_key: false`).
    pub key: Option<String>,
    /// The key's public id.
    pub token: Option<String>,
    /// The key's SHA-256 (LiteLLM's name for it).
    pub token_id: Option<String>,
    /// The key's expiry (RFC 3339, UTC); null when it never expires.
    pub expires: Option<String>,
    #[serde(flatten)]
    pub user: User,
}

/// `GET /user/info` query.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct UserInfoQuery {
    /// Required with the admin key; a user's own key may leave it out.
    pub user_id: Option<String>,
}

/// `GET /key/info` query: the key by its secret, its `token` or its SHA-256; a virtual key may
/// leave it out to read itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct KeyInfoQuery {
    pub key: Option<String>,
}

/// `GET /user/info` (LiteLLM's shape).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UserInfo {
    pub user_id: String,
    pub user_info: User,
    pub keys: Vec<KeyInfo>,
    pub teams: Vec<Team>,
}

/// `GET /user/list` query (LiteLLM's).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct UserListQuery {
    /// Only users with this role.
    pub role: Option<String>,
    /// Comma-separated user ids.
    pub user_ids: Option<String>,
    /// Users whose e-mail contains this text (any case).
    pub user_email: Option<String>,
    /// 1-based.
    pub page: Option<u64>,
    /// 1 to 100, default 25.
    pub page_size: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UserListEntry {
    #[serde(flatten)]
    pub user: User,
    pub key_count: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UserList {
    pub users: Vec<UserListEntry>,
    pub total: u64,
    pub page: u64,
    pub page_size: u64,
    pub total_pages: u64,
}

budget_fields! {
    update:
    /// `POST /user/update`: `user_id` names the user; only the other fields present change;
    /// `null` clears a field.
    #[derive(Debug, Clone, Default, Serialize, Deserialize)]
    #[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
    #[serde(deny_unknown_fields)]
    pub struct UserUpdate {
        pub user_id: Option<String>,
        #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
        pub user_alias: Option<Option<String>>,
        #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
        pub user_email: Option<Option<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub user_role: Option<String>,
        #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
        pub models: Option<Option<Vec<String>>>,
        #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ssr", schema(value_type = Option<Object>))]
        pub metadata: Option<Option<Metadata>>,
    }
}

/// `POST /user/update` answers with the user's fields (`user_id` among them) and, as LiteLLM
/// does, the same under `data`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UserUpdated {
    #[serde(flatten)]
    pub user: User,
    pub data: User,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UserDelete {
    pub user_ids: Vec<String>,
}

/// `{"key": ...}` for `/key/block` and `/key/unblock`, and the `/key/info` query.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct KeyRef {
    pub key: String,
}

/// `GET /key/info`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct KeyInfoResponse {
    pub key: String,
    pub info: KeyInfo,
}

/// `GET /key/list` query.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct KeyListQuery {
    pub team_id: Option<String>,
    pub user_id: Option<String>,
    /// Keys with this alias.
    pub key_alias: Option<String>,
    /// The key with this SHA-256 (LiteLLM's token).
    pub key_hash: Option<String>,
    /// Accepted from LiteLLM's client and ignored: keys are always listed as whole objects.
    pub return_full_object: Option<bool>,
    /// Accepted from LiteLLM's client and ignored: the admin sees every team's keys.
    pub include_team_keys: Option<bool>,
    /// 1-based.
    pub page: Option<u64>,
    pub size: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct KeyList {
    pub keys: Vec<KeyInfo>,
    pub total_count: u64,
    pub current_page: u64,
    pub total_pages: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct KeyDelete {
    /// Keys named by the secret, the token or the SHA-256.
    #[serde(default)]
    pub keys: Option<Vec<String>>,
    /// Every key with one of these aliases (LiteLLM's).
    #[serde(default)]
    pub key_aliases: Option<Vec<String>>,
}

/// The `token`s of the deleted keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct KeysDeleted {
    pub deleted_keys: Vec<String>,
}

/// `POST /key/regenerate` (and the body of `POST /key/{key}/regenerate`, optional there).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct KeyRegenerate {
    /// The key to rotate: its token, secret or SHA-256.
    #[serde(default)]
    pub key: Option<String>,
    /// How long the old secret keeps working (LiteLLM's durations: `"30s"`, `"24h"`, `"2d"`);
    /// none: it stops at once.
    #[serde(default)]
    pub grace_period: Option<String>,
}

/// `POST /session/login`: the admin key, or a person's `user_id` (or `user_email`) and
/// password, exchanged for an HttpOnly session cookie.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Login {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Session {
    pub expires_at: String,
    /// Who signed in: `null` for the admin key.
    #[serde(default)]
    pub user_id: Option<String>,
    /// `proxy_admin` for the admin key.
    #[serde(default)]
    pub user_role: String,
}

/// `GET /session/me`: who is signed in (or calling) and what they may do.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Me {
    /// `null` for the admin key.
    pub user_id: Option<String>,
    /// `proxy_admin`, `proxy_admin_viewer`, `internal_user`, `internal_user_viewer`, or `key`
    /// (a virtual key without a user).
    pub user_role: String,
    /// Changes anything (a proxy admin).
    pub changes_all: bool,
    /// Reads everything (a proxy admin or viewer).
    pub reads_all: bool,
    /// Teams where the user is an `admin`.
    pub admin_teams: Vec<String>,
    /// Teams the user is a member of.
    pub member_teams: Vec<String>,
    /// Organizations where the user is an `org_admin`.
    pub admin_orgs: Vec<String>,
}

impl Me {
    /// Whether the person may change anything at all.
    pub fn may_change(&self) -> bool {
        matches!(self.user_role.as_str(), "proxy_admin" | "internal_user")
    }

    /// Manages a team's members and keys (the console shows its change controls).
    pub fn manages_team(&self, team_id: &str, organization_id: Option<&str>) -> bool {
        self.changes_all
            || (self.may_change()
                && (self.admin_teams.iter().any(|t| t == team_id)
                    || organization_id.is_some_and(|o| self.admin_orgs.iter().any(|a| a == o))))
    }

    /// Issues keys in a team: who manages it, or a member for itself.
    pub fn issues_keys_in(&self, team_id: &str, organization_id: Option<&str>) -> bool {
        self.manages_team(team_id, organization_id)
            || (self.user_role == "internal_user" && self.member_teams.iter().any(|t| t == team_id))
    }
}

/// `POST /invitation/new`: a one-time link for a person to set their password (or reset it).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct InvitationNew {
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub user_email: Option<String>,
    /// The team to invite the person into (a team admin must name one of theirs).
    #[serde(default)]
    pub team_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct InvitationCreated {
    /// The link's id: shown this once.
    pub id: String,
    /// The page where the person sets their password.
    pub url: String,
    pub expires_at: String,
    pub user_id: String,
}

/// `POST /invitation/accept`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct InvitationAccept {
    pub id: String,
    pub password: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct InvitationAccepted {
    pub user_id: String,
}

/// The body of every error: `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub param: Option<String>,
    /// The HTTP status, as a string (LiteLLM's convention).
    pub code: String,
}

/// `GET /spend/logs` query: filters and a page; `start`/`end` are RFC 3339 times or dates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct SpendLogQuery {
    pub team_id: Option<String>,
    /// The secret key or its token.
    pub key: Option<String>,
    pub model: Option<String>,
    /// The HTTP status the caller got, e.g. 200 or 429.
    pub status: Option<u16>,
    /// One request (LiteLLM's filter).
    pub request_id: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub page: Option<u64>,
    pub size: Option<u64>,
}

/// One proxied request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SpendLogEntry {
    pub request_id: String,
    pub time: String,
    /// The key's token.
    pub token: String,
    pub team_id: String,
    pub user_id: Option<String>,
    pub model: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    /// USD.
    pub spend: f64,
    pub latency_ms: u64,
    pub status: u16,
    /// The deployment that answered (`x-litellm-model-id`), and the tries besides its own:
    /// retries within the model, fallbacks to other models. Not read by the console (kept
    /// out of its bundle).
    #[cfg(feature = "ssr")]
    pub model_id: Option<String>,
    #[cfg(feature = "ssr")]
    pub retries: u64,
    #[cfg(feature = "ssr")]
    pub fallbacks: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SpendLogList {
    pub logs: Vec<SpendLogEntry>,
    pub total_count: u64,
    pub current_page: u64,
    pub total_pages: u64,
}

/// `GET /spend/daily` query: dates `YYYY-MM-DD` (UTC), both included; the last 30 days by
/// default.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct DailySpendQuery {
    pub team_id: String,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    /// `model` or `key` (LiteLLM's `api_key` too): each day also split that way.
    pub group_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DailySpendEntry {
    pub date: String,
    pub spend: f64,
    pub requests: u64,
    pub tokens: u64,
    /// With `group_by`: the day's spend per model or key, most spent first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<SpendGroup>>,
}

/// Every day of the range, days without requests at zero.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DailySpend {
    pub team_id: String,
    pub start_date: String,
    pub end_date: String,
    pub days: Vec<DailySpendEntry>,
}

/// `GET /model/info`: the models this gateway serves, with their prices.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ModelList {
    pub data: Vec<ModelEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ModelEntry {
    pub model_name: String,
    pub model_info: ModelPrice,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ModelPrice {
    /// USD per token.
    pub input_cost_per_token: f64,
    pub output_cost_per_token: f64,
    /// The most one answer may hold; requests without `max_tokens` are bounded by it.
    #[serde(default)]
    pub max_output_tokens: Option<u64>,
}

/// `GET /spend/summary` query: UTC dates, both included; the last 30 days by default.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct SpendSummaryQuery {
    pub start_date: Option<String>,
    pub end_date: Option<String>,
}

/// Spend of one team, model or key over the range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SpendGroup {
    /// Team id, model name or key token.
    pub id: String,
    pub spend: f64,
    pub requests: u64,
    pub tokens: u64,
}

/// Every team's spend over the range, and the top models and keys by spend.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SpendSummary {
    pub start_date: String,
    pub end_date: String,
    pub teams: Vec<SpendGroup>,
    pub top_models: Vec<SpendGroup>,
    pub top_keys: Vec<SpendGroup>,
}

/// `GET /spend/refusals` query: RFC 3339 times or dates; the last 24 hours by default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct RefusalsQuery {
    pub start: Option<String>,
    pub end: Option<String>,
}

/// Requests refused in one minute by one level for one reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RefusalCount {
    /// The minute's start, RFC 3339.
    pub minute: String,
    /// `key`, `team` or `gateway`.
    pub level: String,
    /// `budget`, `rate_limit`, `model_not_allowed`, `blocked`, `expired` or `unavailable`.
    pub reason: String,
    pub count: u64,
}

/// The range's refusals per level and reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RefusalTotal {
    pub level: String,
    pub reason: String,
    pub count: u64,
}

/// Refusals over a range: per minute, and totals (most first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Refusals {
    pub start: String,
    pub end: String,
    pub total: u64,
    pub totals: Vec<RefusalTotal>,
    pub per_minute: Vec<RefusalCount>,
}

/// `GET /audit`: a page of the audit log, newest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// `team`, `key`, `user`, `member`, `organization`, `invitation` (or `route`).
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    /// A user id, `admin`, or what the admin key's holder sent as `LiteLLM-Changed-By`.
    pub actor: Option<String>,
    /// From this time (RFC 3339 or a date).
    pub start: Option<String>,
    /// Before this time.
    pub end: Option<String>,
    pub page: Option<u64>,
    pub size: Option<u64>,
}

/// One change: who made it, through which route, to what, and the target before and after
/// (secrets and hashes redacted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    pub id: i64,
    /// The same for every change one request made.
    pub request_id: String,
    pub time: String,
    pub actor: String,
    pub changed_by: Option<String>,
    pub address: Option<String>,
    pub method: String,
    pub route: String,
    pub target_type: String,
    pub target_id: String,
    #[cfg_attr(feature = "ssr", schema(value_type = Option<Object>))]
    pub before: Option<serde_json::Value>,
    #[cfg_attr(feature = "ssr", schema(value_type = Option<Object>))]
    pub after: Option<serde_json::Value>,
    /// What changed, in words: `made`, `deleted`, or `field: before → after` for each field
    /// that differs.
    pub changes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AuditList {
    pub entries: Vec<AuditEntry>,
    pub total_count: u64,
    pub current_page: u64,
    pub total_pages: u64,
}

/// `GET /alert/list`: budget alerts, newest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct AlertQuery {
    /// `organization`, `team`, `member`, `user` or `key`.
    pub scope: Option<String>,
    pub id: Option<String>,
    pub page: Option<u64>,
    pub size: Option<u64>,
}

/// One alert event and its delivery to one webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AlertEntry {
    pub event_id: String,
    /// `budget_threshold`, `budget_forecast` or `soft_budget`.
    pub kind: String,
    /// The alert in words, e.g. `80% of the budget`.
    pub summary: String,
    pub scope: String,
    pub id: String,
    /// The webhook; `null` when none was configured.
    pub destination: Option<String>,
    pub created_at: String,
    pub attempts: u64,
    pub delivered_at: Option<String>,
    /// When the next try is due, while undelivered.
    pub next_attempt_at: Option<String>,
    pub last_error: Option<String>,
    /// The body sent, as sent.
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub event: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AlertList {
    pub alerts: Vec<AlertEntry>,
    pub total_count: u64,
    pub current_page: u64,
    pub total_pages: u64,
}
