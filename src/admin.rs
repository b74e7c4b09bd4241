//! The admin HTTP port (off by default): Prometheus metrics at `/metrics`, the token
//! signing keys at `/.well-known/jwks.json` and forward-auth for proxies at `/auth`.

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::gateway::Gatekeeper;
use crate::signing::KeyRing;

/// Serves the admin routes on `listener` until `stopping` turns true.
pub async fn serve(
    listener: TcpListener,
    keys: Arc<KeyRing>,
    gatekeeper: Arc<Gatekeeper>,
    mut stopping: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let handle = crate::metrics::prometheus();
    let app = Router::new()
        .route("/metrics", get(move || async move { handle.render() }))
        .route(
            "/.well-known/jwks.json",
            get(move || async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    keys.jwks().await.to_string(),
                )
            }),
        )
        .merge(crate::gateway::forward_auth::router(gatekeeper));
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stopping.wait_for(|stop| *stop).await;
        })
        .await
}
