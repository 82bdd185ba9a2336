//! Console sessions: the admin key is traded once for a random session token that lives in an
//! HttpOnly cookie; only the token's hash is stored, so sign-out and expiry are enforced here.

use super::Error;
use super::{secrets, timestamp};
use crate::storage::Storage;
use chrono::{DateTime, Duration, Utc};

const TOKEN_LEN: usize = 43;

pub struct NewSession {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

impl NewSession {
    pub fn expires_at_text(&self) -> String {
        timestamp(self.expires_at.timestamp())
    }
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
    storage.delete_expired_sessions(now.timestamp()).await?;
    let token = secrets::random_secret(TOKEN_LEN)?;
    let expires_at = now + ttl;
    storage
        .insert_session(&secrets::sha256_hex(&token), expires_at.timestamp())
        .await?;
    Ok(NewSession { token, expires_at })
}

pub async fn is_valid(
    storage: &dyn Storage,
    token: &str,
    now: DateTime<Utc>,
) -> Result<bool, Error> {
    Ok(storage
        .session_valid(&secrets::sha256_hex(token), now.timestamp())
        .await?)
}

pub async fn sign_out(storage: &dyn Storage, token: &str) -> Result<(), Error> {
    Ok(storage.delete_session(&secrets::sha256_hex(token)).await?)
}
