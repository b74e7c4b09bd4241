//! Compiles `proto/` with the protoc that `protoc-bin-vendored` ships, so a machine with
//! only the Rust toolchain builds the crate. The descriptor set feeds server reflection.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
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
            &[PathBuf::from("proto"), well_known],
        )?;
    Ok(())
}
