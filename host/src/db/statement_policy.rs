//! What a guest's statements may do on a SQLite file: no `ATTACH` (another
//! tenant's file), no `PRAGMA` (the quota and journal settings are the
//! host's), no transactions (one held across an epoch yield would make every
//! other writer wait in SQLite's busy handler; the guest changes state with
//! one atomic statement each).

use rusqlite::hooks::{AuthAction, AuthContext, Authorization, TransactionOperation};

/// SQLite's authorizer callback for guest connections.
pub fn guest_policy(ctx: AuthContext<'_>) -> Authorization {
    match ctx.action {
        AuthAction::Attach { .. } | AuthAction::Detach { .. } | AuthAction::Pragma { .. } => {
            Authorization::Deny
        }
        AuthAction::Transaction {
            operation: TransactionOperation::Begin,
        }
        | AuthAction::Savepoint {
            operation: TransactionOperation::Begin,
            ..
        } => Authorization::Deny,
        _ => Authorization::Allow,
    }
}
