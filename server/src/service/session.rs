//! Console sessions: the admin key, or a person's password, is traded once for a random session
//! token that lives in an HttpOnly cookie; only the token's hash is stored, with whose session
//! it is, so sign-out and expiry are enforced here and a deleted user's sessions end with them.
//!
//! People set their password through a one-time invitation link (the same link resets a
//! forgotten one): argon2id hashes, and a strength check that works offline (zxcvbn).

use super::{access::Actor, audit, members, secrets, teams, timestamp, users, Ctx, Error};
use crate::storage::{InvitationRow, SessionRow, Storage};
use argon2::{
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};
use chrono::{DateTime, Duration, Utc};

const TOKEN_LEN: usize = 43;
/// How long an invitation link works.
pub const INVITATION_TTL_DAYS: i64 = 7;
/// zxcvbn's score a password needs (0–4): "safely unguessable" against an online attack and
/// slow offline ones.
const MIN_SCORE: zxcvbn::Score = zxcvbn::Score::Three;
const MAX_PASSWORD_BYTES: usize = 256;

pub struct NewSession {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

impl NewSession {
    pub fn expires_at_text(&self) -> String {
        timestamp(self.expires_at.timestamp())
    }
}

/// Opens a session for `user_id` (`None`: the admin key's), bounded by `bound_by`'s authority
/// when a password someone else's link set opened it ([`SessionRow::bound_by`]).
pub async fn open(
    storage: &dyn Storage,
    user_id: Option<&str>,
    bound_by: Option<&str>,
    ttl: Duration,
    now: DateTime<Utc>,
) -> Result<NewSession, Error> {
    storage.delete_expired_sessions(now.timestamp()).await?;
    let token = secrets::random_secret(TOKEN_LEN)?;
    let expires_at = now + ttl;
    storage
        .insert_session(
            &secrets::sha256_hex(&token),
            user_id,
            bound_by,
            expires_at.timestamp(),
        )
        .await?;
    Ok(NewSession { token, expires_at })
}

pub async fn sign_in(
    storage: &dyn Storage,
    master_key: &secrets::MasterKey,
    candidate: &str,
    ttl: Duration,
    now: DateTime<Utc>,
) -> Result<NewSession, Error> {
    if !master_key.matches(candidate) {
        return Err(Error::Unauthorized(
            "That is not the admin key. Use the key Gatehouse printed on its first start, or \
             the value of GATEHOUSE_MASTER_KEY."
                .to_string(),
        ));
    }
    open(storage, None, None, ttl, now).await
}

/// A hash that no password matches, verified when the account is unknown or has no password:
/// an unknown name takes as long to refuse as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        hash_password(&secrets::random_secret(32).unwrap_or_default()).unwrap_or_default()
    })
}

fn hash_password(password: &str) -> Result<String, Error> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|err| Error::Internal(format!("random: {err}")))?;
    let salt = SaltString::encode_b64(&salt).map_err(|err| Error::Internal(err.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|err| Error::Internal(format!("argon2: {err}")))
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Signs a person in with their password: by `user_id` or `user_email`.
pub async fn sign_in_password(
    storage: &dyn Storage,
    user: Option<crate::storage::UserRow>,
    password: &str,
    ttl: Duration,
    now: DateTime<Utc>,
) -> Result<NewSession, Error> {
    let stored = match &user {
        Some(user) => storage.password(&user.user_id).await?,
        None => None,
    };
    let known = stored.is_some();
    let bound_by = stored.as_ref().and_then(|p| p.bound_by.clone());
    let hash = stored.map_or_else(|| decoy_hash().to_string(), |p| p.hash);
    let candidate = password.to_string();
    let matches = tokio::task::spawn_blocking(move || verify_password(&candidate, &hash))
        .await
        .unwrap_or(false);
    match user {
        Some(user) if known && matches => {
            open(storage, Some(&user.user_id), bound_by.as_deref(), ttl, now).await
        }
        _ => Err(Error::Unauthorized(
            "Wrong user or password (a person without a password yet needs an invitation link \
             from an admin)."
                .to_string(),
        )),
    }
}

/// The session of a cookie, if it is still valid.
pub async fn find(
    storage: &dyn Storage,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Option<SessionRow>, Error> {
    Ok(storage
        .session(&secrets::sha256_hex(token), now.timestamp())
        .await?)
}

pub async fn sign_out(storage: &dyn Storage, token: &str) -> Result<(), Error> {
    Ok(storage.delete_session(&secrets::sha256_hex(token)).await?)
}

/// A new invitation: its id (shown once), until when it works, and for whom.
pub struct Invitation {
    pub id: String,
    pub user_id: String,
    pub expires_at: i64,
}

/// Invites a person (or lets them reset a forgotten password): a proxy admin invites anyone; a
/// team's admin (or its organization's) invites people into that team (`team_id`), making the
/// user, as an `internal_user`, and the membership when they are new. Resetting the password of
/// someone who already has one is for proxy admins: a team admin cannot take over an account.
pub async fn invite(
    ctx: Ctx<'_>,
    user_id: Option<&str>,
    user_email: Option<&str>,
    team_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Invitation, Error> {
    users::check_reference("user_id", user_id, user_email)?;
    let what = "invite people to this team";
    let team = match team_id {
        Some(team_id) => Some(teams::managed(ctx, team_id, what).await?),
        None => None,
    };
    let actor = ctx.actor;
    match &team {
        Some(_) => {}
        None => actor.must_change_all("invite people without naming a team_id you manage")?,
    }
    let existing = match (user_id, user_email) {
        (Some(user_id), _) => ctx.storage.user(user_id).await?,
        (None, Some(address)) => users::by_email(ctx, address).await?,
        (None, None) => None,
    };
    if let Some(user) = &existing {
        if !actor.changes_all() {
            if ctx.storage.password(&user.user_id).await?.is_some() {
                return Err(Error::Forbidden(
                    "This person already has a password; only a proxy admin can send them a \
                     link to reset it."
                        .to_string(),
                ));
            }
            // The link sets who they are: only for someone the actor may act for.
            actor.check(
                actor.reaches(ctx, &user.user_id).await?,
                "invite this person (their role or teams reach beyond yours)",
            )?;
        }
    }
    let user = users::find_or_make(ctx, user_id, user_email, now).await?;
    if let Some(team) = &team {
        members::ensure(ctx, &team.team_id, &user.user_id, now).await?;
    }
    let id = secrets::random_secret(TOKEN_LEN)?;
    let expires_at = (now + Duration::days(INVITATION_TTL_DAYS)).timestamp();
    ctx.storage
        .insert_invitation(&InvitationRow {
            id_hash: secrets::sha256_hex(&id),
            user_id: user.user_id.clone(),
            created_by: actor.name(),
            created_at: now.timestamp(),
            expires_at,
            accepted_at: None,
            may_reset: actor.changes_all(),
        })
        .await?;
    ctx.report(super::audit::Changed {
        target_type: "invitation",
        target_id: user.user_id.clone(),
        before: None,
        after: Some(
            serde_json::json!({"user_id": user.user_id, "expires_at": timestamp(expires_at)}),
        ),
    });
    Ok(Invitation {
        id,
        user_id: user.user_id,
        expires_at,
    })
}

/// Why a password is refused, in words a person can act on; `None` when it is strong enough.
pub fn weakness(password: &str, user_inputs: &[&str]) -> Option<String> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Some(format!("password is at most {MAX_PASSWORD_BYTES} bytes"));
    }
    let entropy = zxcvbn::zxcvbn(password, user_inputs);
    if entropy.score() >= MIN_SCORE {
        return None;
    }
    let mut why = String::from("password is too easy to guess");
    if let Some(feedback) = entropy.feedback() {
        if let Some(warning) = feedback.warning() {
            why.push_str(&format!(": {warning}"));
        }
        for suggestion in feedback.suggestions() {
            why.push_str(&format!(" {suggestion}"));
        }
    } else {
        why.push_str(": use a longer password, such as several unrelated words");
    }
    Some(why)
}

/// Sets the invited person's password; the link works once, until it expires. A new password
/// ends the person's other sessions.
/// Sets the invited person's password; the audit log has a row for it (who: the person; what:
/// their password, never its value), written in the same transaction.
pub async fn accept(
    storage: &dyn Storage,
    id: &str,
    password: &str,
    facts: audit::RequestFacts,
    now: DateTime<Utc>,
) -> Result<String, Error> {
    let gone = || {
        Error::NotFound(
            "This invitation link has expired or was used already; ask for a new one.".to_string(),
        )
    };
    let invitation = storage
        .invitation(&secrets::sha256_hex(id))
        .await?
        .filter(|i| i.accepted_at.is_none() && i.expires_at > now.timestamp())
        .ok_or_else(gone)?;
    // A link a proxy admin did not make sets a first password, for someone who can do no more
    // than a member: whoever made it cannot take over an account that has become more since.
    if !invitation.may_reset {
        let plain = storage.user(&invitation.user_id).await?.is_some_and(|u| {
            matches!(
                u.user_role.as_str(),
                "internal_user" | "internal_user_viewer"
            )
        }) && storage.password(&invitation.user_id).await?.is_none()
            && storage
                .members(None, Some(&invitation.user_id))
                .await?
                .iter()
                .all(|m| m.role != "admin")
            && storage
                .org_members(None, Some(&invitation.user_id))
                .await?
                .iter()
                .all(|m| m.user_role != "org_admin");
        if !plain {
            return Err(Error::Forbidden(
                "This link can no longer set this person's password; ask a proxy admin for a \
                 new one."
                    .to_string(),
            ));
        }
    }
    if let Some(why) = weakness(password, &[&invitation.user_id]) {
        return Err(Error::invalid("password", why));
    }
    let candidate = password.to_string();
    let hash = tokio::task::spawn_blocking(move || hash_password(&candidate))
        .await
        .map_err(|err| Error::Internal(err.to_string()))??;
    let facts = audit::RequestFacts {
        actor: invitation.user_id.clone(),
        ..facts
    };
    let rows = audit::rows(
        &facts,
        vec![audit::Changed {
            target_type: "password",
            target_id: invitation.user_id.clone(),
            before: None,
            after: Some(serde_json::json!({"set_with": "invitation"})),
        }],
    );
    // One transaction: the password and its audit row land together, or neither.
    let tx = storage.begin().await?;
    if !tx
        .accept_invitation(&invitation.id_hash, &hash, now.timestamp())
        .await?
    {
        return Err(gone());
    }
    tx.insert_audit(&rows).await?;
    tx.commit().await?;
    Ok(invitation.user_id)
}

/// Whose an actor is, for the console: the user and role, or the admin key.
pub fn describe(actor: &Actor) -> (Option<String>, &'static str) {
    (actor.user_id.clone(), actor.role.name())
}
