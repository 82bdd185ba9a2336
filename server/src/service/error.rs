//! What a service call can answer instead of a result, in the domain's terms; the HTTP layer
//! (`crate::error`) decides the status of each.

use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input: the message says what to send instead; `param` names the field.
    #[error("{message}")]
    Invalid {
        message: String,
        param: Option<String>,
    },
    #[error("{0}")]
    Unauthorized(String),
    /// The actor's role does not allow this.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The caller holds its share of something already (live streams, say): the message says
    /// what to free.
    #[error("{0}")]
    TooMany(String),
    /// A backend this needs (the database, Redis) cannot be reached now; try again later.
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
    /// The database refused or failed a statement: this server's fault, its cause kept.
    #[error("the database failed")]
    Storage(#[source] StorageError),
}

impl Error {
    pub fn invalid(param: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            message: message.into(),
            param: Some(param.to_string()),
        }
    }
}

impl From<StorageError> for Error {
    fn from(err: StorageError) -> Self {
        if err.is_unavailable() {
            Self::Unavailable("The database cannot be reached; try again in a moment.".to_string())
        } else {
            Self::Storage(err)
        }
    }
}
