//! Code generated from `proto/` by `build.rs`.

/// The `session.v1` package.
pub mod session {
    /// `session.v1`: the SessionService contract.
    pub mod v1 {
        tonic::include_proto!("session.v1");
    }
}

/// Encoded descriptors of `proto/`, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("session_descriptor");

/// Encoded descriptors of Envoy's `envoy.service.auth.v3` (ext_authz) and its imports,
/// from `third_party/envoy-ext-authz`, so reflection describes the gateway service too.
pub const ENVOY_EXT_AUTHZ_DESCRIPTOR_SET: &[u8] =
    tonic::include_file_descriptor_set!("envoy_ext_authz_descriptor");
