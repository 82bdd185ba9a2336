//! Who may do what, in one place: the actor behind a request (the admin key, a person signed
//! in, or a virtual key acting with its user's role) and the scopes LiteLLM's roles give.
//!
//! - `proxy_admin` changes everything; `proxy_admin_viewer` reads everything, changes nothing.
//! - An organization's `org_admin` manages that organization (its members, budget within
//!   nothing above it) and its teams: their settings, members and keys.
//! - A team's `admin` manages that team's members and keys and sees its spend; the team's own
//!   budget, limits and models are set by whoever manages the organization (or a proxy admin).
//! - An `internal_user` sees the teams it is a member of, and manages its own keys: it may issue
//!   itself keys in those teams (within the team's budget and models, like any key).
//! - `internal_user_viewer` sees the same and changes nothing.
//! - A virtual key with no user reads its own key only.

use super::{Ctx, Error};
use crate::storage::{KeyRow, TeamRow};

/// A user's `user_role`, as LiteLLM names it, or the admin key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    ProxyAdmin,
    ProxyAdminViewer,
    InternalUser,
    InternalUserViewer,
    /// A virtual key that belongs to no user.
    KeyOnly,
}

impl Role {
    pub fn from_name(name: &str) -> Self {
        match name {
            "proxy_admin" => Self::ProxyAdmin,
            "proxy_admin_viewer" => Self::ProxyAdminViewer,
            "internal_user" => Self::InternalUser,
            "key" => Self::KeyOnly,
            // Anything else (a role this version does not know) can do the least.
            _ => Self::InternalUserViewer,
        }
    }

    /// The lesser of two roles: what a key whose user has `self` may do when whoever gave out
    /// its secret had `cap` (a viewer of everything and a member meet as a member's viewer).
    pub fn at_most(self, cap: Role) -> Self {
        match (self, cap) {
            (Self::KeyOnly, _) | (_, Self::KeyOnly) => Self::KeyOnly,
            (Self::ProxyAdmin, cap) => cap,
            (role, Self::ProxyAdmin) => role,
            (role, cap) if role == cap => role,
            _ => Self::InternalUserViewer,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::ProxyAdmin => "proxy_admin",
            Self::ProxyAdminViewer => "proxy_admin_viewer",
            Self::InternalUser => "internal_user",
            Self::InternalUserViewer => "internal_user_viewer",
            Self::KeyOnly => "key",
        }
    }
}

/// Who is acting, with the scopes their memberships give them (read on every request, so a
/// role or membership change holds from the next one).
#[derive(Debug, Clone)]
pub struct Actor {
    /// `None`: the admin key (or a session it opened).
    pub user_id: Option<String>,
    pub role: Role,
    /// The virtual key acting, if one is.
    pub key_id: Option<String>,
    /// Teams where the user is an `admin`.
    pub admin_teams: Vec<String>,
    /// Teams the user is a member of (any role).
    pub member_teams: Vec<String>,
    /// Organizations where the user is an `org_admin`.
    pub admin_orgs: Vec<String>,
    /// Organizations the user is a member of (any role).
    pub member_orgs: Vec<String>,
    /// Who the admin key's holder says made the change (LiteLLM's `LiteLLM-Changed-By`).
    pub changed_by: Option<String>,
    /// The person whose authority bounds this one's, when the credential acting was given out
    /// by someone who is neither its user nor a proxy admin: a key another person issued,
    /// rotated or handed over ([`KeyRow::issued_by`]), a session opened with a password set
    /// through another person's link. Whoever gave it out may still hold it, so it never does
    /// more than they could (now): the scopes both have, the lesser role.
    pub bound_by: Option<String>,
}

/// Gatehouse itself (start-up, background work) and the admin key.
pub static SYSTEM: Actor = Actor::admin();

fn forbidden(what: &str) -> Error {
    Error::Forbidden(format!("Your role does not allow you to {what}."))
}

impl Actor {
    pub const fn admin() -> Self {
        Self {
            user_id: None,
            role: Role::ProxyAdmin,
            key_id: None,
            admin_teams: Vec::new(),
            member_teams: Vec::new(),
            admin_orgs: Vec::new(),
            member_orgs: Vec::new(),
            changed_by: None,
            bound_by: None,
        }
    }

    /// A user acting (signed in, or through one of their keys), with their memberships. A key
    /// acts with at most its `cap` ([`crate::storage::KeyRow::max_role`]); a credential
    /// someone else gave out, within what `bound_by` may do now ([`Self::bound_by`]).
    pub async fn user(
        ctx: Ctx<'_>,
        user_id: &str,
        role: &str,
        key_id: Option<String>,
        cap: Option<&str>,
        bound_by: Option<&str>,
    ) -> Result<Self, Error> {
        let role = Role::from_name(role);
        let mut actor = Self {
            user_id: Some(user_id.to_string()),
            role: cap.map_or(role, |cap| role.at_most(Role::from_name(cap))),
            key_id,
            ..Self::admin()
        };
        let bound_by = bound_by.filter(|by| *by != user_id);
        let issuer = match bound_by {
            Some(by) => Some(Self::issuer(ctx, by).await?),
            None => None,
        };
        if let Some(issuer) = &issuer {
            actor.role = actor.role.at_most(issuer.role);
            actor.bound_by = issuer.user_id.clone();
        }
        if matches!(actor.role, Role::ProxyAdmin | Role::ProxyAdminViewer) {
            return Ok(actor);
        }
        actor.memberships(ctx).await?;
        match &issuer {
            Some(issuer) if !issuer.changes_all() => actor.within(ctx, issuer).await,
            _ => Ok(actor),
        }
    }

    /// The person who gave out a credential, as they stand now (one deleted since can do
    /// nothing).
    async fn issuer(ctx: Ctx<'_>, user_id: &str) -> Result<Self, Error> {
        let mut issuer = Self {
            user_id: Some(user_id.to_string()),
            role: Role::InternalUserViewer,
            ..Self::admin()
        };
        let Some(user) = ctx.storage.user(user_id).await? else {
            return Ok(issuer);
        };
        issuer.role = Role::from_name(&user.user_role);
        if !issuer.reads_all() {
            issuer.memberships(ctx).await?;
        }
        Ok(issuer)
    }

    /// Keeps the scopes `issuer` has too: the teams it sees or manages, the organizations.
    async fn within(mut self, ctx: Ctx<'_>, issuer: &Self) -> Result<Self, Error> {
        let mut admin_teams = Vec::new();
        let mut member_teams = Vec::new();
        for team_id in &self.member_teams {
            let Some(team) = ctx.storage.team(team_id).await? else {
                continue;
            };
            if issuer.sees_team(&team) {
                member_teams.push(team_id.clone());
            }
            if self.admin_teams.contains(team_id) && issuer.manages_team(&team) {
                admin_teams.push(team_id.clone());
            }
        }
        self.admin_teams = admin_teams;
        self.member_teams = member_teams;
        self.admin_orgs.retain(|org| issuer.manages_org(org));
        self.member_orgs.retain(|org| issuer.sees_org(org));
        Ok(self)
    }

    /// Reads the user's teams and organizations, and their role in each.
    async fn memberships(&mut self, ctx: Ctx<'_>) -> Result<(), Error> {
        let actor = self;
        let Some(user_id) = actor.user_id.clone() else {
            return Ok(());
        };
        let user_id = user_id.as_str();
        for member in ctx.storage.members(None, Some(user_id)).await? {
            if member.role == "admin" {
                actor.admin_teams.push(member.team_id.clone());
            }
            actor.member_teams.push(member.team_id);
        }
        for member in ctx.storage.org_members(None, Some(user_id)).await? {
            if member.user_role == "org_admin" {
                actor.admin_orgs.push(member.organization_id.clone());
            }
            actor.member_orgs.push(member.organization_id);
        }
        Ok(())
    }

    /// A virtual key without a user: it may read itself.
    pub fn key_only(key_id: &str) -> Self {
        Self {
            role: Role::KeyOnly,
            key_id: Some(key_id.to_string()),
            ..Self::admin()
        }
    }

    /// Who the audit log names: the user, else what the admin key's holder said, else `admin`.
    pub fn name(&self) -> String {
        match (&self.user_id, &self.changed_by, &self.key_id) {
            (Some(user_id), _, _) => user_id.clone(),
            (None, _, Some(key_id)) => format!("key:{key_id}"),
            (None, Some(by), None) => by.clone(),
            (None, None, None) => "admin".to_string(),
        }
    }

    /// Reads everything: a proxy admin or viewer.
    pub fn reads_all(&self) -> bool {
        matches!(self.role, Role::ProxyAdmin | Role::ProxyAdminViewer)
    }

    /// Changes everything: a proxy admin.
    pub fn changes_all(&self) -> bool {
        self.role == Role::ProxyAdmin
    }

    /// May change anything at all (viewers never do).
    fn may_change(&self) -> bool {
        matches!(self.role, Role::ProxyAdmin | Role::InternalUser)
    }

    /// Refused unless a proxy admin.
    pub fn must_change_all(&self, what: &str) -> Result<(), Error> {
        if self.changes_all() {
            Ok(())
        } else {
            Err(forbidden(what))
        }
    }

    /// Refused unless a proxy admin or viewer.
    pub fn must_read_all(&self, what: &str) -> Result<(), Error> {
        if self.reads_all() {
            Ok(())
        } else {
            Err(forbidden(what))
        }
    }

    fn org_admin_of(&self, organization_id: Option<&str>) -> bool {
        organization_id.is_some_and(|org| self.admin_orgs.iter().any(|o| o == org))
    }

    /// Manages an organization: its settings, members and teams.
    pub fn manages_org(&self, organization_id: &str) -> bool {
        self.changes_all() || (self.may_change() && self.org_admin_of(Some(organization_id)))
    }

    pub fn sees_org(&self, organization_id: &str) -> bool {
        self.reads_all() || self.member_orgs.iter().any(|o| o == organization_id)
    }

    /// Sets a team's budget, limits, models and organization: a proxy admin, or an
    /// `org_admin` of the organization the team is in.
    pub fn governs_team(&self, team: &TeamRow) -> bool {
        self.changes_all()
            || (self.may_change() && self.org_admin_of(team.organization_id.as_deref()))
    }

    /// Manages a team's members and keys: as [`Self::governs_team`], or the team's `admin`.
    pub fn manages_team(&self, team: &TeamRow) -> bool {
        self.governs_team(team) || (self.may_change() && self.admin_teams.contains(&team.team_id))
    }

    /// Sees a team, its keys and members: who manages it, its members, and readers of all.
    pub fn sees_team(&self, team: &TeamRow) -> bool {
        self.reads_all()
            || self.manages_team(team)
            || self.member_teams.contains(&team.team_id)
            || self.org_admin_of(team.organization_id.as_deref())
    }

    /// Sees every key of a team (not only its own): who manages the team or reads all.
    pub fn sees_team_keys(&self, team: &TeamRow) -> bool {
        self.reads_all()
            || self.manages_team(team)
            || self.org_admin_of(team.organization_id.as_deref())
            || (self.role == Role::InternalUserViewer && self.admin_teams.contains(&team.team_id))
    }

    /// The key is the actor's own: the acting key, or a key of the acting user.
    pub fn owns_key(&self, key: &KeyRow) -> bool {
        self.key_id.as_deref() == Some(key.key_id.as_str()) && self.role == Role::KeyOnly
            || (self.user_id.is_some() && key.user_id == self.user_id)
    }

    pub fn sees_key(&self, key: &KeyRow, team: &TeamRow) -> bool {
        self.owns_key(key) || self.sees_team_keys(team)
    }

    /// Changes, rotates or deletes a key: who manages its team, or its own user.
    pub fn manages_key(&self, key: &KeyRow, team: &TeamRow) -> bool {
        self.manages_team(team)
            || (self.role == Role::InternalUser && self.user_id.is_some() && self.owns_key(key))
    }

    /// Acts on another person's key in a way that hands over or widens what its holder can do
    /// (rotating it, which answers its new secret; changing or unblocking it): only for a key
    /// of nobody, one's own, or one whose user the actor may act for ([`Self::reaches`]).
    pub async fn acts_for_key(&self, ctx: Ctx<'_>, key: &KeyRow) -> Result<bool, Error> {
        match &key.user_id {
            None => Ok(true),
            Some(_) if self.owns_key(key) => Ok(true),
            Some(user_id) => self.reaches(ctx, user_id).await,
        }
    }

    /// The authority a key gets when this actor gives out its secret (issuing or rotating it)
    /// or hands it to `key_user`: its [`KeyRow::max_role`] and [`KeyRow::issued_by`]. Its own
    /// user's or a proxy admin's grant is what they may do; anyone else's is at most what the
    /// key carried before, bound by the actor (who holds the secret now).
    pub fn key_grant(
        &self,
        key_user: Option<&str>,
        before: Option<&str>,
    ) -> (String, Option<String>) {
        let own = key_user.is_some() && key_user == self.user_id.as_deref();
        if own || (self.changes_all() && self.bound_by.is_none()) {
            return (self.role.name().to_string(), self.bound_by.clone());
        }
        let cap = before.map_or(self.role, |b| self.role.at_most(Role::from_name(b)));
        (
            cap.name().to_string(),
            self.bound_by.clone().or_else(|| self.user_id.clone()),
        )
    }

    /// Issues a key in `team` for `user_id`: who manages the team, or a member for itself.
    pub fn may_issue_key(&self, team: &TeamRow, user_id: Option<&str>) -> bool {
        self.manages_team(team)
            || (self.role == Role::InternalUser
                && self.user_id.is_some()
                && user_id == self.user_id.as_deref()
                && self.member_teams.contains(&team.team_id))
    }

    /// What someone who does not read everything hears of a target that does not exist: the
    /// same refusal as for one they may not touch, so ids cannot be probed.
    pub fn unseen(&self, err: Error, what: &str) -> Error {
        match err {
            Error::NotFound(_) if !self.reads_all() => forbidden(what),
            err => err,
        }
    }

    /// Whether the actor may act for `user_id` (give them a key, which acts with their role; send
    /// them a link that sets their password): a proxy admin for anyone; anyone for themself; else
    /// a user not made yet, or an internal user whose every team and organization the actor
    /// manages — never someone who could do more than the actor.
    pub async fn reaches(&self, ctx: Ctx<'_>, user_id: &str) -> Result<bool, Error> {
        if self.changes_all() || self.user_id.as_deref() == Some(user_id) {
            return Ok(true);
        }
        let Some(user) = ctx.storage.user(user_id).await? else {
            return Ok(true);
        };
        if !matches!(
            user.user_role.as_str(),
            "internal_user" | "internal_user_viewer"
        ) {
            return Ok(false);
        }
        for member in ctx.storage.org_members(None, Some(user_id)).await? {
            if !self.manages_org(&member.organization_id) {
                return Ok(false);
            }
        }
        for member in ctx.storage.members(None, Some(user_id)).await? {
            let managed = ctx
                .storage
                .team(&member.team_id)
                .await?
                .is_some_and(|team| self.manages_team(&team));
            if !managed {
                return Ok(false);
            }
        }
        Ok(true)
    }

    pub fn check(&self, allowed: bool, what: &str) -> Result<(), Error> {
        if allowed {
            Ok(())
        } else {
            Err(forbidden(what))
        }
    }
}
