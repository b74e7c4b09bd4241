//! `sessionctl health`: asks `grpc.health.v1.Health/Check` whether the server serves,
//! and answers with the exit code, so a container HEALTHCHECK or a script needs no
//! shell and no grpc tool.

use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::HealthCheckRequest;

use crate::client::{answer, Target};
use crate::error::CtlError;

/// The service asked about by default: it turns NOT_SERVING as soon as the server
/// starts to stop or its store can no longer write, while the whole server ("") may
/// still answer SERVING.
pub const SESSION_SERVICE: &str = "session.v1.SessionService";

/// Flags of `health`.
#[derive(clap::Args)]
pub struct HealthArgs {
    /// The service to ask about ("" for the server as a whole).
    #[arg(long, default_value = SESSION_SERVICE, value_name = "NAME")]
    service: String,
}

/// Asks the server; Ok with the status's name when it is SERVING, else the failure.
pub async fn check(target: &Target, args: HealthArgs) -> Result<Checked, CtlError> {
    let api = target.connect().await?;
    let request = api.request(HealthCheckRequest {
        service: args.service.clone(),
    });
    let response = answer(api.timeout(), api.health_client().check(request)).await?;
    let status = ServingStatus::try_from(response.status).unwrap_or(ServingStatus::Unknown);
    let checked = Checked {
        service: args.service,
        status: status.as_str_name(),
    };
    match status {
        ServingStatus::Serving => Ok(checked),
        _ => Err(CtlError::NotServing {
            service: checked.service,
            status: checked.status,
        }),
    }
}

/// A SERVING answer, ready to print.
pub struct Checked {
    service: String,
    status: &'static str,
}

impl Checked {
    /// One line for people: the status, as the health protocol names it.
    pub fn human(&self) -> String {
        format!("{}\n", self.status)
    }

    /// The service and its status, for scripts.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({ "service": self.service, "status": self.status })
    }
}
