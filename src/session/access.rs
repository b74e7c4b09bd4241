//! Which groups a caller may touch: the session rules' share of caller permissions.

use std::collections::BTreeSet;

use super::SessionError;

/// The groups a call may read or change sessions of.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum GroupAccess {
    /// Every group (no callers configured, or a caller without a group list).
    #[default]
    All,
    /// Only these groups.
    Only(BTreeSet<String>),
}

impl GroupAccess {
    /// Whether sessions of `group` are within reach.
    pub fn allows(&self, group: &str) -> bool {
        match self {
            GroupAccess::All => true,
            GroupAccess::Only(groups) => groups.contains(group),
        }
    }

    /// The groups within reach of both.
    pub fn within(&self, other: &GroupAccess) -> GroupAccess {
        match (self, other) {
            (GroupAccess::All, reach) | (reach, GroupAccess::All) => reach.clone(),
            (GroupAccess::Only(these), GroupAccess::Only(those)) => {
                GroupAccess::Only(these.intersection(those).cloned().collect())
            }
        }
    }

    /// `Ok` when `group` is within reach, else the error that says so.
    pub fn check(&self, group: &str) -> Result<(), SessionError> {
        if self.allows(group) {
            Ok(())
        } else {
            Err(GroupAccess::denied(group))
        }
    }

    /// The error for a group out of reach.
    pub fn denied(group: &str) -> SessionError {
        SessionError::PermissionDenied(format!(
            "this caller may not act on sessions of group {group:?}"
        ))
    }
}

/// Who makes a call, and which groups it may touch: events name the actor.
#[derive(Clone, Copy, Debug)]
pub struct Acting<'a> {
    /// The groups within reach.
    pub access: &'a GroupAccess,
    /// The caller's name ("anonymous" when no callers are configured).
    pub actor: &'a str,
}

impl Acting<'static> {
    /// Every group, as "anonymous": a server without configured callers.
    pub const ANONYMOUS: Acting<'static> = Acting {
        access: &GroupAccess::All,
        actor: "anonymous",
    };
}

impl std::ops::Deref for Acting<'_> {
    type Target = GroupAccess;

    fn deref(&self) -> &GroupAccess {
        self.access
    }
}
