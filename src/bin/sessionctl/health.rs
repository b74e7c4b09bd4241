//! `sessionctl health`: asks `grpc.health.v1.Health/Check` whether the server serves,
//! and answers with the exit code, so a container HEALTHCHECK or a script needs no
//! shell and no grpc tool.

use serde_json::json;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::HealthCheckRequest;

use crate::client::{answer, Target};
use crate::error::CtlError;
use crate::output::Output;

/// The service asked about by default: it turns NOT_SERVING as soon as the server
/// starts to stop or its store can no longer write, while the whole server ("") may
/// still answer SERVING.
pub const SESSION_SERVICE: &str = "session.v1.SessionService";

/// Ask grpc.health.v1 whether the server serves: prints SERVING and exits 0, else
/// names the status and exits 1 (2: no answer). For container health checks.
#[derive(clap::Args)]
pub struct HealthArgs {
    /// The service to ask about ("" for the server as a whole).
    #[arg(long, default_value = SESSION_SERVICE, value_name = "NAME")]
    service: String,
}

impl HealthArgs {
    /// Asks the server: the status when it is SERVING, else the failure (exit 1).
    pub async fn run(self, target: &Target) -> Result<Output, CtlError> {
        let api = target.connect().await?;
        let request = api.request(HealthCheckRequest {
            service: self.service.clone(),
        });
        let response = answer(api.timeout(), api.health_client().check(request)).await?;
        let status = ServingStatus::try_from(response.status).unwrap_or(ServingStatus::Unknown);
        let name = status.as_str_name();
        if status != ServingStatus::Serving {
            return Err(CtlError::NotServing {
                service: self.service,
                status: name,
            });
        }
        Ok(Output {
            json: json!({ "service": self.service, "status": name }),
            text: format!("{name}\n"),
        })
    }
}
