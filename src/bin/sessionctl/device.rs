//! `--device-key FILE`: the device key (PKCS#8 PEM, Ed25519 or P-256) a bound session is
//! started with and its DPoP proofs are signed by; `start` creates the file with a new
//! Ed25519 key when it is missing. A server that asks for a nonce gets one retry.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Args;
use sessiond::proto::session::v1::session_service_client::SessionServiceClient;
use sessiond::session::binding::DeviceSigner;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use crate::client::Target;
use crate::error::CtlError;

/// The flag, on `start`, `refresh` and `whoami`.
#[derive(Args)]
pub struct DeviceKeyArgs {
    /// Bind to (start) or prove (refresh, whoami) the device key in FILE: PKCS#8 PEM,
    /// Ed25519 or P-256; start creates FILE with a new Ed25519 key when it is missing.
    #[arg(long, value_name = "FILE")]
    device_key: Option<PathBuf>,
}

impl DeviceKeyArgs {
    /// The key in the file, created first when `create` and it is missing.
    pub fn signer(&self, create: bool) -> Result<Option<DeviceSigner>, CtlError> {
        let Some(path) = &self.device_key else {
            return Ok(None);
        };
        match std::fs::read_to_string(path) {
            Ok(pem) => DeviceSigner::from_pkcs8_pem(&pem)
                .map(Some)
                .map_err(|error| {
                    CtlError::Usage(format!("--device-key {}: {error}", path.display()))
                }),
            Err(error) if create && error.kind() == std::io::ErrorKind::NotFound => {
                create_key(path).map(Some)
            }
            Err(error) => Err(CtlError::Usage(format!(
                "--device-key {}: {error}",
                path.display()
            ))),
        }
    }
}

/// A new Ed25519 key, written to `path` readable by its owner only.
fn create_key(path: &Path) -> Result<DeviceSigner, CtlError> {
    let failed =
        |error: String| CtlError::Usage(format!("--device-key {}: {error}", path.display()));
    let signer = DeviceSigner::generate_ed25519().map_err(|error| failed(error.to_string()))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let pem = signer
        .to_pkcs8_pem()
        .map_err(|error| failed(error.to_string()))?;
    let mut file = options
        .open(path)
        .map_err(|error| failed(error.to_string()))?;
    std::io::Write::write_all(&mut file, pem.as_bytes())
        .map_err(|error| failed(error.to_string()))?;
    Ok(signer)
}

/// Sends the call `send` makes of `message`, with a DPoP proof by `signer` (if any) of
/// `token` for the gRPC method at `url`; when the server answers NONCE_REQUIRED, once
/// more with its nonce.
pub async fn call_with_proof<Req: Clone, Resp>(
    target: &Target,
    message: Req,
    proof: (Option<&DeviceSigner>, &str, &str),
    send: impl AsyncFn(
        &mut SessionServiceClient<Channel>,
        Request<Req>,
    ) -> Result<Response<Resp>, Status>,
) -> Result<Resp, CtlError> {
    let (signer, url, token) = proof;
    let Some(signer) = signer else {
        return target.call(message, &send).await;
    };
    let attempt = async |nonce: Option<&str>| {
        let proof = signer
            .proof("POST", url, token, nonce, now_ms())
            .map_err(|error| CtlError::Usage(format!("cannot sign the device proof: {error}")))?;
        let value = MetadataValue::try_from(proof)
            .map_err(|_| CtlError::Usage("the device proof is not ASCII".to_owned()))?;
        target
            .call(
                message.clone(),
                async |client, mut request: Request<Req>| {
                    request.metadata_mut().insert("dpop", value.clone());
                    send(client, request).await
                },
            )
            .await
    };
    match attempt(None).await {
        Err(CtlError::Status(status)) => match nonce_asked(&status) {
            Some(nonce) => attempt(Some(&nonce)).await,
            None => Err(CtlError::Status(status)),
        },
        answered => answered,
    }
}

/// The nonce a NONCE_REQUIRED answer hands out.
fn nonce_asked(status: &Status) -> Option<String> {
    let nonce = status.metadata().get("dpop-nonce")?;
    nonce.to_str().ok().map(str::to_owned)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}
