//! Who calls and what it may do: the `Caller` the auth layer leaves in a request's
//! extensions, the `Permission` each call needs, and what handlers and gateways read.

use std::collections::BTreeSet;
use std::sync::Arc;

use strum::{EnumIter, EnumString, IntoStaticStr, VariantNames};
use tonic::{Extensions, Status};

use crate::session::{Acting, GroupAccess};

/// A call a caller may be allowed to make, named in `[[callers]].calls` as written here.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    EnumIter,
    EnumString,
    IntoStaticStr,
    VariantNames,
)]
pub enum Permission {
    Start,
    Refresh,
    Extend,
    Whoami,
    Logout,
    /// Logout with `all_for_user`: ends every session of a user.
    LogoutAll,
    RefreshAllForUser,
    ListUserSessions,
    WatchSessions,
    Reauthenticate,
    UpdateAttributes,
    RotateSigningKey,
    /// An online backup: every session record and the signing keys.
    Backup,
    ListRevocations,
    /// Envoy's `envoy.service.auth.v3.Authorization/Check` (ext_authz).
    ExtAuthz,
    /// Ends every session of a user authenticated before a moment.
    RevokeUserSessions,
    ListSessions,
    RevokeSessions,
}

/// Envoy's ext_authz call, served beside `SessionService`.
pub const EXT_AUTHZ_CHECK: &str = "/envoy.service.auth.v3.Authorization/Check";

impl Permission {
    /// The name a config file uses for it.
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// The permission a gRPC path needs; None for services open to everyone.
    pub fn for_path(path: &str) -> Result<Option<Permission>, Status> {
        // Health, reflection and the public keys are for everyone.
        if path.starts_with("/grpc.health.v1.")
            || path.starts_with("/grpc.reflection.")
            || path == "/session.v1.SessionService/GetJwks"
        {
            return Ok(None);
        }
        if path == EXT_AUTHZ_CHECK {
            return Ok(Some(Permission::ExtAuthz));
        }
        let method = path.rsplit('/').next().unwrap_or_default();
        method
            .parse()
            .map(Some)
            .map_err(|_| Status::unimplemented(format!("no such call: {path}")))
    }
}

/// An identified caller, as handlers find it in the request's extensions.
#[derive(Clone, Debug)]
pub struct Caller(Arc<CallerPolicy>);

#[derive(Debug)]
struct CallerPolicy {
    name: String,
    permissions: BTreeSet<Permission>,
    access: GroupAccess,
}

impl Caller {
    /// A caller named `name` that may make `permissions` calls on the groups of `access`.
    pub fn new(name: String, permissions: BTreeSet<Permission>, access: GroupAccess) -> Caller {
        Caller(Arc::new(CallerPolicy {
            name,
            permissions,
            access,
        }))
    }

    /// The caller's configured name.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// Whether it may make calls of `permission`.
    pub fn may(&self, permission: Permission) -> bool {
        self.0.permissions.contains(&permission)
    }

    /// The groups it may touch.
    pub fn access(&self) -> &GroupAccess {
        &self.0.access
    }

    /// `Ok` when it may make calls of `permission`, else PERMISSION_DENIED naming both.
    pub fn authorize(&self, permission: Permission) -> Result<(), Status> {
        if self.may(permission) {
            Ok(())
        } else {
            Err(Status::permission_denied(format!(
                "caller {:?} may not call {}",
                self.name(),
                permission.name()
            )))
        }
    }
}

/// Who calls and what it may touch, as the auth layer left it in the request's
/// extensions; no entry means no callers are configured: "anonymous", every group.
pub fn acting(extensions: &Extensions) -> Acting<'_> {
    extensions
        .get::<Caller>()
        .map_or(Acting::ANONYMOUS, |caller| Acting {
            access: caller.access(),
            actor: caller.name(),
        })
}

/// The caller the auth layer identified, if callers are configured.
pub fn identified(extensions: &Extensions) -> Option<&Caller> {
    extensions.get::<Caller>()
}

/// Whether the caller may make calls of `permission` (anyone may, with no callers
/// configured): for rules finer than the call's own permission, such as LogoutAll.
pub fn may(extensions: &Extensions, permission: Permission) -> bool {
    identified(extensions).is_none_or(|caller| caller.may(permission))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_session_service_call_has_a_permission() {
        use prost::Message;
        let set = prost_types::FileDescriptorSet::decode(crate::proto::FILE_DESCRIPTOR_SET)
            .expect("descriptor set decodes");
        let methods: Vec<String> = set
            .file
            .iter()
            .flat_map(|file| &file.service)
            .filter(|service| service.name() == "SessionService")
            .flat_map(|service| &service.method)
            .map(|method| method.name().to_owned())
            .collect();
        assert!(methods.len() >= 8, "{methods:?}");
        for method in methods.into_iter().filter(|method| method != "GetJwks") {
            let path = format!("/session.v1.SessionService/{method}");
            assert!(
                matches!(Permission::for_path(&path), Ok(Some(_))),
                "{method} has no permission, so configured callers could never call it"
            );
        }
    }

    #[test]
    fn names_parse_back_to_their_permission() {
        use strum::IntoEnumIterator;
        for permission in Permission::iter() {
            assert_eq!(permission.name().parse(), Ok(permission));
        }
        assert!("Whoamy".parse::<Permission>().is_err());
    }

    #[test]
    fn envoy_check_needs_the_ext_authz_permission() {
        assert_eq!(
            Permission::for_path(EXT_AUTHZ_CHECK).ok(),
            Some(Some(Permission::ExtAuthz))
        );
    }

    #[test]
    fn health_and_reflection_need_no_permission() {
        assert_eq!(
            Permission::for_path("/grpc.health.v1.Health/Check").ok(),
            Some(None)
        );
        assert_eq!(
            Permission::for_path("/session.v1.SessionService/Whoami").ok(),
            Some(Some(Permission::Whoami))
        );
    }

    #[test]
    fn no_caller_in_the_extensions_acts_as_anonymous_on_every_group() {
        let extensions = Extensions::new();
        assert_eq!(acting(&extensions).actor, "anonymous");
        assert!(may(&extensions, Permission::LogoutAll));
    }

    #[test]
    fn a_caller_acts_under_its_name_and_permissions() {
        let mut extensions = Extensions::new();
        extensions.insert(Caller::new(
            "edge".into(),
            BTreeSet::from([Permission::Logout]),
            GroupAccess::All,
        ));
        assert_eq!(acting(&extensions).actor, "edge");
        assert!(!may(&extensions, Permission::LogoutAll));
        let caller = identified(&extensions).expect("inserted");
        assert!(caller.authorize(Permission::Logout).is_ok());
        let refused = caller
            .authorize(Permission::Start)
            .expect_err("not granted");
        assert_eq!(refused.message(), "caller \"edge\" may not call Start");
    }
}
