//! The admin HTTP port (off by default): Prometheus metrics at `/metrics`.

use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Serves the admin routes on `listener` until `stopping` turns true.
pub async fn serve(
    listener: TcpListener,
    mut stopping: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let handle = crate::metrics::prometheus();
    let app = Router::new().route("/metrics", get(move || async move { handle.render() }));
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stopping.wait_for(|stop| *stop).await;
        })
        .await
}
