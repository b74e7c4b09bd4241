//! Compiles `proto/` with the protoc that `protoc-bin-vendored` ships, so a machine with
//! only the Rust toolchain builds the crate. The descriptor sets feed server reflection:
//! ours, and Envoy's ext_authz from `third_party/envoy-ext-authz` (descriptors only: its Rust types come
//! from the `envoy-types` crate).

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo::rerun-if-changed=proto");
    println!("cargo::rerun-if-changed=third_party/envoy-ext-authz");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let mut prost_config = tonic_prost_build::Config::new();
    prost_config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    let well_known = protoc_bin_vendored::include_path()?;

    tonic_prost_build::configure()
        .codec_path("crate::api::codec::SessionCodec")
        .file_descriptor_set_path(out_dir.join("session_descriptor.bin"))
        .compile_with_config(
            prost_config,
            &[PathBuf::from("proto/session/v1/session.proto")],
            &[PathBuf::from("proto"), well_known.clone()],
        )?;

    let status = std::process::Command::new(protoc_bin_vendored::protoc_bin_path()?)
        .arg("--include_imports")
        .arg("--descriptor_set_out")
        .arg(out_dir.join("envoy_ext_authz_descriptor.bin"))
        .arg("-I")
        .arg("third_party/envoy-ext-authz")
        .arg("-I")
        .arg(well_known)
        .arg("envoy/service/auth/v3/external_auth.proto")
        .status()?;
    if !status.success() {
        return Err(format!("protoc failed on third_party/envoy-ext-authz: {status}").into());
    }
    Ok(())
}
