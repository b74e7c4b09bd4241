//! A call's deadline: the sooner of the server's `call_timeout` and the client's own
//! (`grpc-timeout`), for handlers that may wait before they answer (held quota
//! refusals) so they still answer in time.

use std::time::Duration;

use tokio::time::Instant;

/// When a call must have its answer: the sooner of the server's `call_timeout` and the
/// client's own deadline (its `grpc-timeout` header). Read only by the calls that may
/// hold a refusal, not on every call.
pub fn call_deadline(metadata: &tonic::metadata::MetadataMap, call_timeout: Duration) -> Instant {
    let client = metadata
        .get("grpc-timeout")
        .and_then(|value| value.to_str().ok())
        .and_then(grpc_timeout);
    Instant::now() + client.map_or(call_timeout, |client| client.min(call_timeout))
}

/// A `grpc-timeout` value: up to 8 digits and a unit (H, M, S, m, u or n). tonic parses
/// it too, but privately.
fn grpc_timeout(value: &str) -> Option<Duration> {
    let split = value.len().checked_sub(1)?;
    let (digits, unit) = (value.get(..split)?, value.get(split..)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.checked_mul(3600)?),
        "M" => Duration::from_secs(amount.checked_mul(60)?),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clients_grpc_timeout_is_read_in_every_unit() {
        assert_eq!(grpc_timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(grpc_timeout("3M"), Some(Duration::from_secs(180)));
        assert_eq!(grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(grpc_timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(grpc_timeout("9n"), Some(Duration::from_nanos(9)));
        for bad in ["", "m", "123456789m", "10x", "-1S", "+1S", "1.5S"] {
            assert_eq!(grpc_timeout(bad), None, "{bad:?}");
        }
    }
}
