//! The connections the load goes over: `--connections` HTTP/2 channels to one URL,
//! plaintext or TLS (with a client certificate for mTLS) as the flags ask.

use std::time::Duration;

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::cli::Cli;
use crate::error::{chain, BoxError};

/// How long to wait for each connection before calling the server unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens `--connections` HTTP/2 connections to `url`, each with its own `Channel`,
/// over TLS when the flags ask for it.
pub async fn connect(cli: &Cli, url: &str, tls: bool) -> Result<Vec<Channel>, BoxError> {
    let mut endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|error| format!("--addr {url} is not a valid URL: {}", chain(&error)))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true);
    if tls {
        let ca_cert = cli
            .ca_cert
            .as_ref()
            .ok_or("TLS needs --ca-cert: no system roots are built into the bench")?;
        let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(ca_cert)?));
        if let (Some(cert), Some(key)) = (&cli.cert, &cli.key) {
            tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
        }
        if let Some(domain) = &cli.tls_domain {
            tls = tls.domain_name(domain);
        }
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|error| format!("TLS settings: {}", chain(&error)))?;
    }
    let mut channels = Vec::new();
    for _ in 0..cli.connections.max(1) {
        let channel = endpoint.connect().await.map_err(|error| {
            format!(
                "cannot connect to {url}: {} (is sessiond running there?)",
                chain(&error)
            )
        })?;
        channels.push(channel);
    }
    Ok(channels)
}

/// A PEM file's bytes.
fn read(path: &std::path::Path) -> Result<Vec<u8>, BoxError> {
    std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()).into())
}
