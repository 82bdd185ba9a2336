//! One admin change as a unit of work: its transaction, and the levels it touched. A change
//! flows one way: the service writes the database inside the unit and says what it is about to
//! change ([`Ctx::touch`]); [`crate::routes::audit`] writes the audit rows in the same
//! transaction and commits; only then does this instance read each touched level again from
//! the database into its gate — the path every fleet peer takes when told
//! ([`super::budgets::follow`]) — and tell the fleet. A change that does not commit leaves
//! nothing behind in memory: nothing was put there.

use super::{audit, Ctx};
use crate::{
    notices::Change,
    storage::{BudgetOwner, Storage, StorageError, Transaction},
};
use serde_json::Value;
use std::sync::{Mutex, MutexGuard};

/// A level the change touched, and how it stood before (as the audit log shows it).
struct Touched {
    change: Change,
    before: Option<Value>,
}

pub struct Work {
    tx: Box<dyn Transaction>,
    touched: Mutex<Vec<Touched>>,
    /// What the services report besides levels (an invitation).
    reported: Mutex<Vec<audit::Changed>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Work {
    pub async fn begin(storage: &dyn Storage) -> Result<Self, StorageError> {
        Ok(Self {
            tx: storage.begin().await?,
            touched: Mutex::new(Vec::new()),
            reported: Mutex::new(Vec::new()),
        })
    }

    /// The transaction, as the storage the services write through.
    pub fn storage(&self) -> &dyn Storage {
        self.tx.storage()
    }

    /// Records that `owner` `id` is about to change, with how it stands now (read inside the
    /// transaction, so before this change's own writes to it: the caller touches first).
    pub async fn touch(&self, ctx: Ctx<'_>, owner: BudgetOwner, id: &str) {
        let change = Change {
            owner,
            id: id.to_string(),
        };
        if lock(&self.touched).iter().any(|t| t.change == change) {
            return;
        }
        // As the log shows every target: whoever is acting.
        let view = Ctx {
            actor: &super::access::SYSTEM,
            ..ctx
        };
        let before = audit::view(view, owner, id).await;
        let mut touched = lock(&self.touched);
        if !touched.iter().any(|t| t.change == change) {
            touched.push(Touched { change, before });
        }
    }

    pub fn report(&self, changed: audit::Changed) {
        lock(&self.reported).push(changed);
    }

    /// Every target the change touched, before and after (read now, inside the transaction),
    /// then what the services reported.
    pub async fn changes(&self, ctx: Ctx<'_>) -> Vec<audit::Changed> {
        let touched: Vec<(Change, Option<Value>)> = lock(&self.touched)
            .iter()
            .map(|t| (t.change.clone(), t.before.clone()))
            .collect();
        let view = Ctx {
            actor: &super::access::SYSTEM,
            storage: self.storage(),
            work: Some(self),
            ..ctx
        };
        let mut changes = Vec::with_capacity(touched.len());
        for (change, before) in touched {
            changes.push(audit::Changed {
                target_type: change.owner.name(),
                after: audit::view(view, change.owner, &change.id).await,
                target_id: change.id,
                before,
            });
        }
        changes.extend(lock(&self.reported).drain(..));
        changes
    }

    /// Commits; answers what the change touched, for the gates to follow.
    pub async fn commit(self) -> Result<Vec<Change>, StorageError> {
        let touched = self
            .touched
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.tx.commit().await?;
        Ok(touched.into_iter().map(|t| t.change).collect())
    }
}
