//! The audit log: every change made through the API — who, what (route, target), the target
//! before and after, when, from where. The HTTP layer runs each changing request in one
//! database transaction and writes the rows in it, so a change never lands without its row and
//! a refused request leaves none. What changed is what the services touched in their unit of
//! work ([`super::work::Work`]: every level they wrote — teams, keys, users, members,
//! organizations) plus what they report besides (invitations); "before" and "after" are both
//! read inside the transaction, before and after the change's own writes.

use super::{keys, members, organizations, teams, timestamp_ms, users, validate, Ctx, Error};
use crate::storage::{AuditFilter, AuditRow, BudgetOwner};
use app::types::{AuditEntry, AuditList, AuditQuery};
use serde_json::Value;

/// One target a request changed, as the services report it.
#[derive(Debug, Clone, PartialEq)]
pub struct Changed {
    pub target_type: &'static str,
    pub target_id: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// A level as the API shows it, if it exists (read through `ctx.storage`: inside a change, its
/// transaction).
pub async fn view(ctx: Ctx<'_>, owner: BudgetOwner, id: &str) -> Option<Value> {
    let json = |v: Result<Value, serde_json::Error>| v.ok().map(redacted);
    match owner {
        BudgetOwner::Team => {
            let row = ctx.storage.team(id).await.ok()??;
            json(serde_json::to_value(
                teams::team_view(ctx, &row).await.ok()?,
            ))
        }
        BudgetOwner::Key => {
            let row = ctx.storage.key(id).await.ok()??;
            json(serde_json::to_value(keys::key_view(ctx, &row).await))
        }
        BudgetOwner::User => {
            let row = ctx.storage.user(id).await.ok()??;
            let teams = users::team_ids(ctx, id).await.ok()?;
            json(serde_json::to_value(
                users::user_view(ctx, &row, teams).await,
            ))
        }
        BudgetOwner::Member => {
            let row = ctx.storage.member(id).await.ok()??;
            json(serde_json::to_value(
                members::membership_view(ctx, &row).await,
            ))
        }
        BudgetOwner::Organization => {
            let row = ctx.storage.organization(id).await.ok()??;
            json(serde_json::to_value(
                organizations::organization_view(ctx, &row).await.ok()?,
            ))
        }
    }
}

/// Field names whose values are never written to the log.
const SECRET_FIELDS: [&str; 6] = [
    "key",
    "key_hash",
    "token_id",
    "password",
    "password_hash",
    "id_hash",
];

/// The value with secrets and hashes replaced (the services report views, which hold none;
/// this keeps it so whatever they report).
pub fn redacted(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(name, v)| {
                    let secret = SECRET_FIELDS.contains(&name.as_str())
                        || v.as_str()
                            .is_some_and(|s| s.starts_with("sk-") && !s.contains("..."));
                    let v = if secret && !v.is_null() {
                        Value::String("[redacted]".to_string())
                    } else {
                        redacted(v)
                    };
                    (name, v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(redacted).collect()),
        other => other,
    }
}

/// The rows of one successful request's changes (one per target; one for the route when a
/// service reported none).
pub fn rows(request: &RequestFacts, changes: Vec<Changed>) -> Vec<AuditRow> {
    let row = |target_type: &str, target_id: String, before, after| AuditRow {
        id: 0,
        request_id: request.request_id.clone(),
        at_ms: request.at_ms,
        actor: request.actor.clone(),
        changed_by: request.changed_by.clone(),
        address: request.address.clone(),
        method: request.method.clone(),
        route: request.route.clone(),
        target_type: target_type.to_string(),
        target_id,
        before_value: before,
        after_value: after,
    };
    if changes.is_empty() {
        return vec![row("route", request.route.clone(), None, None)];
    }
    changes
        .into_iter()
        .map(|c| row(c.target_type, c.target_id, c.before, c.after))
        .collect()
}

/// What the HTTP layer knows of a changing request.
#[derive(Debug, Clone)]
pub struct RequestFacts {
    pub request_id: String,
    pub at_ms: i64,
    pub actor: String,
    pub changed_by: Option<String>,
    pub address: Option<String>,
    pub method: String,
    pub route: String,
}

/// A page of the log, newest first, filtered by target, actor and time.
pub async fn list(ctx: Ctx<'_>, query: AuditQuery) -> Result<AuditList, Error> {
    ctx.actor.must_read_all("read the audit log")?;
    let (page, size, offset) = validate::page(query.page, query.size)?;
    for (param, value) in [
        ("target_type", &query.target_type),
        ("target_id", &query.target_id),
        ("actor", &query.actor),
    ] {
        if let Some(value) = value {
            validate::label(param, value)?;
        }
    }
    let instant = |param: &str, text: &Option<String>| {
        text.as_deref()
            .map(|t| super::spend::instant(param, t))
            .transpose()
    };
    let filter = AuditFilter {
        target_type: query.target_type,
        target_id: query.target_id,
        actor: query.actor,
        from_ms: instant("start", &query.start)?,
        to_ms: instant("end", &query.end)?,
    };
    let (rows, total) = ctx.storage.audit(&filter, offset, size).await?;
    Ok(AuditList {
        entries: rows
            .into_iter()
            .map(|r| AuditEntry {
                changes: differences(r.before_value.as_ref(), r.after_value.as_ref()),
                id: r.id,
                request_id: r.request_id,
                time: timestamp_ms(r.at_ms),
                actor: r.actor,
                changed_by: r.changed_by,
                address: r.address,
                method: r.method,
                route: r.route,
                target_type: r.target_type,
                target_id: r.target_id,
                before: r.before_value,
                after: r.after_value,
            })
            .collect(),
        total_count: total,
        current_page: page,
        total_pages: total.div_ceil(size),
    })
}

/// What changed between two states of a target, in words.
fn differences(before: Option<&Value>, after: Option<&Value>) -> Vec<String> {
    match (
        before.and_then(Value::as_object),
        after.and_then(Value::as_object),
    ) {
        (None, Some(_)) => vec!["made".to_string()],
        (Some(_), None) => vec!["deleted".to_string()],
        (None, None) => Vec::new(),
        (Some(b), Some(a)) => {
            let mut names: Vec<&String> = b.keys().chain(a.keys()).collect();
            names.sort();
            names.dedup();
            let show = |v: Option<&Value>| v.map_or_else(|| "—".to_string(), Value::to_string);
            names
                .into_iter()
                .filter(|n| !matches!(n.as_str(), "updated_at" | "spend"))
                .filter(|n| b.get(*n) != a.get(*n))
                .map(|n| format!("{n}: {} → {}", show(b.get(n)), show(a.get(n))))
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn differences_name_each_changed_field() {
        let before = json!({"max_budget": 10.0, "spend": 1.0, "team_alias": "a", "models": []});
        let after = json!({"max_budget": 20.0, "spend": 2.0, "team_alias": "a", "models": ["x"]});
        assert_eq!(
            differences(Some(&before), Some(&after)),
            ["max_budget: 10.0 → 20.0", "models: [] → [\"x\"]"]
        );
        assert_eq!(differences(None, Some(&after)), ["made"]);
        assert_eq!(differences(Some(&before), None), ["deleted"]);
    }

    #[test]
    fn secrets_and_hashes_are_redacted_at_any_depth() {
        let value = json!({"key": "sk-abc_def", "key_name": "sk-abc...wxyz", "nested":
            [{"token_id": "ab12", "password": "p", "note": "sk-secret_value"}], "spend": 1.5});
        assert_eq!(
            redacted(value),
            json!({"key": "[redacted]", "key_name": "sk-abc...wxyz", "nested":
                [{"token_id": "[redacted]", "password": "[redacted]", "note": "[redacted]"}],
                "spend": 1.5})
        );
    }
}
